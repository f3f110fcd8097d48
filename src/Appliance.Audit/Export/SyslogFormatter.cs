using System.Globalization;
using System.Text;
using Appliance.Audit.Chain;

namespace Appliance.Audit.Export;

/// <summary>
/// An audit entry as an RFC 5424 syslog message for the customer's SIEM: facility "log audit" (13), severity
/// informational for served requests and warning for refusals, MSGID the entry's kind, the key facts as structured
/// data, and the full entry (with its hash) as JSON in the message body.
/// </summary>
public static class SyslogFormatter
{
    public const int LogAuditFacility = 13;

    public static string Format(AuditEntry entry, string appName, string structuredDataId)
    {
        var record = entry.Record;
        var severity = record.Status >= 400 ? 4 : 6;
        var header = string.Create(CultureInfo.InvariantCulture,
            $"<{LogAuditFacility * 8 + severity}>1 {Timestamp(record.Time)} {Token(entry.Node, 255)} {Token(appName, 48)} - {Token(record.Kind, 32)}");
        var data = new StringBuilder().Append('[').Append(structuredDataId);
        Param(data, "seq", entry.Sequence.ToString(CultureInfo.InvariantCulture));
        Param(data, "requestId", record.RequestId);
        Param(data, "user", record.Username);
        Param(data, "client", record.Client);
        Param(data, "team", record.Team);
        Param(data, "src", record.SourceIp);
        Param(data, "endpoint", record.Endpoint);
        Param(data, "model", record.Model);
        Param(data, "classification", record.Classification);
        Param(data, "status", record.Status?.ToString(CultureInfo.InvariantCulture));
        Param(data, "promptTokens", record.PromptTokens?.ToString(CultureInfo.InvariantCulture));
        Param(data, "completionTokens", record.CompletionTokens?.ToString(CultureInfo.InvariantCulture));
        Param(data, "hash", entry.Hash);
        data.Append(']');
        return $"{header} {data} \uFEFF{Encoding.UTF8.GetString(AuditExport.EntryLine(entry))}";
    }

    /// <summary>What ends a message cut to fit a datagram; its header and structured data (seq, hash) stay whole.</summary>
    public const string TruncationMarker = " [truncated: the full entry is in the audit log and /audit/export]";

    /// <summary>The message, or its first bytes (at a character boundary) and the marker when it is longer than <paramref name="maxBytes"/>.</summary>
    public static byte[] Truncate(byte[] message, int maxBytes)
    {
        if (message.Length <= maxBytes)
        {
            return message;
        }

        var marker = Encoding.UTF8.GetBytes(TruncationMarker);
        var keep = Math.Max(maxBytes - marker.Length, 0);
        while (keep > 0 && (message[keep] & 0xC0) == 0x80)
        {
            keep--; // not inside a multi-byte character
        }

        return [.. message.AsSpan(0, keep), .. marker];
    }

    /// <summary>RFC 3339 in UTC with microseconds (RFC 5424 allows at most six fraction digits).</summary>
    private static string Timestamp(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>Header fields are printable US-ASCII without spaces; anything else becomes "_", nothing becomes "-".</summary>
    private static string Token(string? value, int maxLength)
    {
        if (string.IsNullOrEmpty(value))
        {
            return "-";
        }

        var token = new string([.. value.Select(c => c is > ' ' and < '\x7F' ? c : '_')]);
        return token.Length > maxLength ? token[..maxLength] : token;
    }

    private static void Param(StringBuilder data, string name, string? value)
    {
        if (value is null)
        {
            return;
        }

        data.Append(' ').Append(name).Append("=\"");
        foreach (var c in value)
        {
            if (c is '"' or '\\' or ']')
            {
                data.Append('\\');
            }

            data.Append(c);
        }

        data.Append('"');
    }
}
