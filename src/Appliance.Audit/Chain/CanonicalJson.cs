using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;

namespace Appliance.Audit.Chain;

/// <summary>
/// The one byte form of an entry that its hash covers: compact JSON with every field in a fixed order, nulls written,
/// times as UTC with seven decimals, numbers in invariant culture. Any change of a field changes these bytes.
/// </summary>
public static class CanonicalJson
{
    public const string GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000";

    public static byte[] Bytes(long sequence, string node, AuditRecord record, string previousHash)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("seq", sequence);
            json.WriteString("node", node);
            json.WriteString("prev", previousHash);
            WriteRecord(json, record);
            json.WriteEndObject();
        }

        return buffer.ToArray();
    }

    public static string Hash(long sequence, string node, AuditRecord record, string previousHash) =>
        Convert.ToHexStringLower(SHA256.HashData(Bytes(sequence, node, record, previousHash)));

    public static string Time(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>A record as it will be stored and hashed: times in UTC, durations rounded to microseconds.</summary>
    public static AuditRecord Normalize(AuditRecord record) => record with
    {
        Time = record.Time.ToUniversalTime(),
        QueueMs = Round(record.QueueMs),
        TimeToFirstTokenMs = Round(record.TimeToFirstTokenMs),
        DurationMs = Round(record.DurationMs),
    };

    internal static void WriteRecord(Utf8JsonWriter json, AuditRecord record)
    {
        json.WriteString("time", Time(record.Time));
        json.WriteString("kind", record.Kind);
        Text(json, "requestId", record.RequestId);
        Text(json, "subject", record.Subject);
        Text(json, "username", record.Username);
        Text(json, "client", record.Client);
        Text(json, "team", record.Team);
        json.WriteStartArray("roles");
        foreach (var role in record.Roles)
        {
            json.WriteStringValue(role);
        }

        json.WriteEndArray();
        Text(json, "sourceIp", record.SourceIp);
        Text(json, "method", record.Method);
        Text(json, "endpoint", record.Endpoint);
        Text(json, "model", record.Model);
        Text(json, "modelDigest", record.ModelDigest);
        Text(json, "classification", record.Classification);
        Number(json, "status", record.Status);
        Text(json, "errorCode", record.ErrorCode);
        Text(json, "finishReason", record.FinishReason);
        Number(json, "promptTokens", record.PromptTokens);
        Number(json, "completionTokens", record.CompletionTokens);
        Number(json, "queueMs", record.QueueMs);
        Number(json, "ttftMs", record.TimeToFirstTokenMs);
        Number(json, "durationMs", record.DurationMs);
        Text(json, "detail", record.Detail);
        Text(json, "content", record.Content);
    }

    private static double? Round(double? value) => value is { } ms ? Math.Round(ms, 3) : null;

    private static void Text(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null)
        {
            json.WriteNull(name);
        }
        else
        {
            json.WriteString(name, value);
        }
    }

    private static void Number(Utf8JsonWriter json, string name, int? value)
    {
        if (value is { } number)
        {
            json.WriteNumber(name, number);
        }
        else
        {
            json.WriteNull(name);
        }
    }

    private static void Number(Utf8JsonWriter json, string name, double? value)
    {
        if (value is { } number)
        {
            json.WriteNumber(name, number);
        }
        else
        {
            json.WriteNull(name);
        }
    }
}
