using System.Text.Json;
using Appliance.Audit.Chain;
using Appliance.Audit.Stores;

namespace Appliance.Audit.Export;

/// <summary>
/// The audit log as JSON Lines, for auditors and SIEMs: one entry per line (its canonical fields plus "hash"), and
/// checkpoints as {"checkpoint": {...}} lines. The file verifies offline with the checkpoint public key.
/// </summary>
public static class AuditExport
{
    /// <summary>
    /// One node's chain from a store: its retention record, entries and checkpoints. The entries stream in pages, so a
    /// retention run may commit meanwhile and remove entries the pages have not reached: its record (read again at the
    /// end) follows the entries then, and tells an offline verifier where the chain resumes.
    /// </summary>
    /// <summary>
    /// The export as GET /audit/export writes it: each chain, then the end line signed with the audit key, which says
    /// what each chain's part holds (without it, a file cut short would verify as a shorter chain).
    /// </summary>
    public static async Task WriteAllAsync(Stream output, IAuditStore store, IEnumerable<string> chains, CheckpointSigner signer, TimeProvider time, CancellationToken cancellation)
    {
        var written = new List<ExportedChain>();
        foreach (var chain in chains)
        {
            written.Add(await WriteChainAsync(output, store, chain, cancellation));
        }

        await output.WriteAsync(ExportEnd.Sign(signer, written, time.GetUtcNow()).Line(), cancellation);
        await output.WriteAsync("\n"u8.ToArray(), cancellation);
    }

    public static async Task<ExportedChain> WriteChainAsync(Stream output, IAuditStore store, string chain, CancellationToken cancellation)
    {
        var retention = store.Retention(chain);
        var written = await WriteAsync(output, store.Chain(chain), store.Checkpoints(chain), cancellation, retention);
        if (store.Retention(chain) is { } later && later.ThroughSequence > (retention?.ThroughSequence ?? 0))
        {
            await output.WriteAsync(RetentionLine(later), cancellation);
            await output.WriteAsync("\n"u8.ToArray(), cancellation);
        }

        return written with { Node = chain };
    }

    /// <summary>Writes entries and checkpoints (one chain's); says what was written.</summary>
    public static async Task<ExportedChain> WriteAsync(Stream output, IEnumerable<AuditEntry> entries, IEnumerable<Checkpoint> checkpoints, CancellationToken cancellation,
        RetentionRecord? retention = null)
    {
        var newline = "\n"u8.ToArray();
        if (retention is not null)
        {
            await output.WriteAsync(RetentionLine(retention), cancellation);
            await output.WriteAsync(newline, cancellation);
        }

        var (node, count, lastSequence, lastHash, checkpointCount) = (retention?.Node ?? string.Empty, 0L, 0L, string.Empty, 0L);
        foreach (var entry in entries)
        {
            cancellation.ThrowIfCancellationRequested();
            await output.WriteAsync(EntryLine(entry), cancellation);
            await output.WriteAsync(newline, cancellation);
            (node, count, lastSequence, lastHash) = (entry.Node, count + 1, entry.Sequence, entry.Hash);
        }

        foreach (var checkpoint in checkpoints)
        {
            await output.WriteAsync(CheckpointLine(checkpoint), cancellation);
            await output.WriteAsync(newline, cancellation);
            checkpointCount++;
        }

        return new ExportedChain(node, count, lastSequence, lastHash, checkpointCount);
    }

    public static byte[] EntryLine(AuditEntry entry)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("seq", entry.Sequence);
            json.WriteString("node", entry.Node);
            json.WriteString("prev", entry.PreviousHash);
            CanonicalJson.WriteRecord(json, entry.Record);
            json.WriteString("hash", entry.Hash);
            json.WriteEndObject();
        }

        return buffer.ToArray();
    }

    public static byte[] CheckpointLine(Checkpoint checkpoint) => JsonSerializer.SerializeToUtf8Bytes(new
    {
        checkpoint = new
        {
            node = checkpoint.Node, seq = checkpoint.Sequence, hash = checkpoint.Hash, time = CanonicalJson.Time(checkpoint.Time),
            keyId = checkpoint.KeyId, signature = checkpoint.Signature,
        },
    });

    public static byte[] RetentionLine(RetentionRecord r) => JsonSerializer.SerializeToUtf8Bytes(new
    {
        retention = new
        {
            node = r.Node, throughSeq = r.ThroughSequence, throughHash = r.ThroughHash, removedEntries = r.RemovedEntries,
            oldestRemaining = CanonicalJson.Time(r.OldestRemaining), time = CanonicalJson.Time(r.Time), keyId = r.KeyId, signature = r.Signature,
        },
    });

    /// <summary>
    /// Reads an export back (one node's chain or several, each with its retention record); a line that is not an
    /// entry, checkpoint or retention record is an error naming its line number.
    /// </summary>
    public static ExportContents Read(TextReader reader)
    {
        var entries = new List<AuditEntry>();
        var checkpoints = new List<Checkpoint>();
        var retentions = new List<RetentionRecord>();
        foreach (var (_, line) in Lines(reader))
        {
            switch (line)
            {
                case AuditEntry entry: entries.Add(entry); break;
                case Checkpoint checkpoint: checkpoints.Add(checkpoint); break;
                case RetentionRecord retention: retentions.Add(retention); break;
            }
        }

        return new ExportContents(entries, checkpoints, retentions);
    }

    /// <summary>
    /// The export's lines one at a time, each with its line number (blank lines skipped): an <see cref="AuditEntry"/>,
    /// a <see cref="Checkpoint"/> or a <see cref="RetentionRecord"/>. Reading a large file this way keeps one line in memory.
    /// </summary>
    public static IEnumerable<(int Number, object Line)> Lines(TextReader reader)
    {
        var number = 0;
        for (var line = reader.ReadLine(); line is not null; line = reader.ReadLine())
        {
            number++;
            if (!string.IsNullOrWhiteSpace(line))
            {
                yield return (number, ParseLine(line, number));
            }
        }
    }

    /// <summary>One non-blank line of an export: an entry, a checkpoint or a retention record (else an error naming the line).</summary>
    internal static object ParseLine(string line, int number)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            if (root.TryGetProperty("retention", out var r))
            {
                return new RetentionRecord(r.GetProperty("node").GetString()!, r.GetProperty("throughSeq").GetInt64(), r.GetProperty("throughHash").GetString()!,
                    r.GetProperty("removedEntries").GetInt64(), SqlAuditStore.ParseTime(r.GetProperty("oldestRemaining").GetString()!),
                    SqlAuditStore.ParseTime(r.GetProperty("time").GetString()!), r.GetProperty("keyId").GetString()!, r.GetProperty("signature").GetString()!);
            }

            if (root.TryGetProperty("end", out var end))
            {
                return ExportEnd.Parse(end);
            }

            if (root.TryGetProperty("checkpoint", out var c))
            {
                return new Checkpoint(c.GetProperty("node").GetString()!, c.GetProperty("seq").GetInt64(), c.GetProperty("hash").GetString()!,
                    SqlAuditStore.ParseTime(c.GetProperty("time").GetString()!), c.GetProperty("keyId").GetString()!, c.GetProperty("signature").GetString()!);
            }

            return new AuditEntry(root.GetProperty("seq").GetInt64(), root.GetProperty("node").GetString()!, Record(root),
                root.GetProperty("prev").GetString()!, root.GetProperty("hash").GetString()!);
        }
        catch (Exception exception) when (exception is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"line {number} is not an audit entry or checkpoint: {exception.Message}", exception);
        }
    }

    private static AuditRecord Record(JsonElement e) => new()
    {
        Time = SqlAuditStore.ParseTime(e.GetProperty("time").GetString()!),
        Kind = e.GetProperty("kind").GetString()!,
        RequestId = Text(e, "requestId"),
        Subject = Text(e, "subject"),
        Username = Text(e, "username"),
        Client = Text(e, "client"),
        Team = Text(e, "team"),
        Roles = [.. e.GetProperty("roles").EnumerateArray().Select(r => r.GetString()!)],
        SourceIp = Text(e, "sourceIp"),
        Method = Text(e, "method"),
        Endpoint = Text(e, "endpoint"),
        Model = Text(e, "model"),
        ModelDigest = Text(e, "modelDigest"),
        Classification = Text(e, "classification"),
        Status = Int(e, "status"),
        ErrorCode = Text(e, "errorCode"),
        FinishReason = Text(e, "finishReason"),
        PromptTokens = Int(e, "promptTokens"),
        CompletionTokens = Int(e, "completionTokens"),
        QueueMs = Double(e, "queueMs"),
        TimeToFirstTokenMs = Double(e, "ttftMs"),
        DurationMs = Double(e, "durationMs"),
        Detail = Text(e, "detail"),
        Content = Text(e, "content"),
    };

    private static string? Text(JsonElement e, string name) => e.GetProperty(name).ValueKind == JsonValueKind.Null ? null : e.GetProperty(name).GetString();

    private static int? Int(JsonElement e, string name) => e.GetProperty(name).ValueKind == JsonValueKind.Null ? null : e.GetProperty(name).GetInt32();

    private static double? Double(JsonElement e, string name) => e.GetProperty(name).ValueKind == JsonValueKind.Null ? null : e.GetProperty(name).GetDouble();
}

/// <summary>What an export file holds, as <see cref="AuditExport.Read"/> reads it.</summary>
public sealed record ExportContents(List<AuditEntry> Entries, List<Checkpoint> Checkpoints, List<RetentionRecord> Retentions);
