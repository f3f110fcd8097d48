using System.Buffers.Text;
using System.Text.Json;

namespace Appliance.Audit.Cluster;

/// <summary>
/// Where paging through several nodes' chains stopped: for each node, the last sequence already returned, and the
/// direction. Each chain resumes from its own position, so a page never skips or repeats an entry whatever the
/// interleaving of the nodes' clocks. Clients see it as an opaque string (base64url of a small JSON object).
/// </summary>
public sealed class AuditCursor
{
    private readonly Dictionary<string, long> _positions;

    public AuditCursor(bool newestFirst, IReadOnlyDictionary<string, long>? positions = null)
    {
        NewestFirst = newestFirst;
        _positions = positions is null ? new(StringComparer.Ordinal) : new(positions, StringComparer.Ordinal);
    }

    public bool NewestFirst { get; }

    public IReadOnlyDictionary<string, long> Positions => _positions;

    /// <summary>The last sequence of <paramref name="node"/> already returned, or null when none was.</summary>
    public long? PositionOf(string node) => _positions.TryGetValue(node, out var sequence) ? sequence : null;

    /// <summary>A cursor that also remembers <paramref name="sequence"/> as the last entry returned of <paramref name="node"/>.</summary>
    public AuditCursor With(string node, long sequence) =>
        new(NewestFirst, new Dictionary<string, long>(_positions, StringComparer.Ordinal) { [node] = sequence });

    public string Encode() =>
        Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(new Wire(NewestFirst ? "desc" : "asc", _positions)));

    /// <summary>Reads a cursor a page returned; false (and why) for anything else.</summary>
    public static bool TryParse(string text, out AuditCursor? cursor, out string? error)
    {
        cursor = null;
        error = "is not a cursor returned as 'next' by an earlier page";
        if (text.Length > 16_384)
        {
            return false;
        }

        try
        {
            var wire = JsonSerializer.Deserialize<Wire>(Base64Url.DecodeFromChars(text));
            if (wire?.Order is not ("asc" or "desc") || wire.Positions is null || wire.Positions.Values.Any(v => v < 0))
            {
                return false;
            }

            cursor = new AuditCursor(wire.Order == "desc", wire.Positions);
            error = null;
            return true;
        }
        catch (Exception exception) when (exception is FormatException or JsonException)
        {
            return false;
        }
    }

    private sealed record Wire(string Order, Dictionary<string, long> Positions);
}
