using System.Numerics;

namespace Appliance.Grammar;

/// <summary>
/// Which tokens may follow in one automaton state, and how many bytes each leaves before the output can be complete.
/// Dense (a byte per vocabulary entry) where most tokens are allowed, as inside a string; sparse (the allowed tokens
/// only) where few are, as between properties, so that a schema's many structural states cost little memory.
/// </summary>
internal sealed class TokenTable
{
    /// <summary>Value of a token that may not come next.</summary>
    public const byte Forbidden = 255;

    /// <summary>Value of a token after which the output needs this many bytes or more.</summary>
    public const byte Far = 254;

    private readonly byte[]? _dense;
    private readonly int[]? _tokens;
    private readonly byte[]? _distances;

    private TokenTable(byte[]? dense, int[]? tokens, byte[]? distances)
    {
        _dense = dense;
        _tokens = tokens;
        _distances = distances;
        var values = (dense ?? distances!).AsSpan();
        Closest = Far;
        foreach (var value in values)
        {
            Closest = Math.Min(Closest, value);
        }
    }

    /// <summary>The fewest bytes any allowed token leaves (at most <see cref="Far"/>).</summary>
    public byte Closest { get; }

    public long Bytes => _dense?.Length ?? (_tokens!.Length * 5L);

    /// <summary>Keeps the dense table when at least one token in eight is allowed, else only the allowed ones.</summary>
    public static TokenTable From(byte[] dense)
    {
        var allowed = dense.Length - dense.AsSpan().Count(Forbidden);
        if (allowed * 8L >= dense.Length)
        {
            return new TokenTable(dense, null, null);
        }

        var tokens = new int[allowed];
        var distances = new byte[allowed];
        var next = 0;
        for (var token = 0; token < dense.Length; token++)
        {
            if (dense[token] != Forbidden)
            {
                tokens[next] = token;
                distances[next++] = dense[token];
            }
        }

        return new TokenTable(null, tokens, distances);
    }

    /// <summary>The value for one token (for tests).</summary>
    public byte this[int token] => _dense is { } dense
        ? token < dense.Length ? dense[token] : Forbidden
        : System.Array.BinarySearch(_tokens!, token) is var at and >= 0 ? _distances![at] : Forbidden;

    /// <summary>Whether some token leaves the output completable within <paramref name="limit"/> bytes.</summary>
    public bool AnyWithin(byte limit) => _dense is { } dense
        ? dense.AsSpan().IndexOfAnyInRange((byte)0, limit) >= 0
        : _distances!.AsSpan().IndexOfAnyInRange((byte)0, limit) >= 0;

    /// <summary>Sets every logit whose token is forbidden or too far (above <paramref name="limit"/>) to negative infinity; returns how many remain.</summary>
    public int Apply(Span<float> logits, byte limit) => _dense is { } dense ? ApplyDense(logits, dense, limit) : ApplySparse(logits, limit);

    private static int ApplyDense(Span<float> logits, byte[] table, byte limit)
    {
        var width = Math.Min(logits.Length, table.Length);
        logits[width..].Fill(float.NegativeInfinity);
        var allowed = 0;
        var step = Vector<byte>.Count;
        var bound = new Vector<byte>(limit);
        var position = 0;
        // Inside strings almost every token is allowed: whole blocks that are can be skipped at vector speed.
        for (; position + step <= width; position += step)
        {
            if (Vector.LessThanOrEqualAll(new Vector<byte>(table, position), bound))
            {
                allowed += step;
                continue;
            }

            allowed += ApplyScalar(logits, table, limit, position, position + step);
        }

        return allowed + ApplyScalar(logits, table, limit, position, width);
    }

    private static int ApplyScalar(Span<float> logits, byte[] table, byte limit, int from, int to)
    {
        var allowed = 0;
        for (var token = from; token < to; token++)
        {
            if (table[token] > limit)
            {
                logits[token] = float.NegativeInfinity;
            }
            else
            {
                allowed++;
            }
        }

        return allowed;
    }

    private int ApplySparse(Span<float> logits, byte limit)
    {
        var tokens = _tokens!;
        var distances = _distances!;
        Span<float> kept = tokens.Length <= 512 ? stackalloc float[tokens.Length] : new float[tokens.Length];
        for (var i = 0; i < tokens.Length; i++)
        {
            kept[i] = tokens[i] < logits.Length ? logits[tokens[i]] : float.NegativeInfinity;
        }

        logits.Fill(float.NegativeInfinity);
        var allowed = 0;
        for (var i = 0; i < tokens.Length; i++)
        {
            if (distances[i] <= limit && tokens[i] < logits.Length)
            {
                logits[tokens[i]] = kept[i];
                allowed++;
            }
        }

        return allowed;
    }
}
