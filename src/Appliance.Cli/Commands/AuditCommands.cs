using System.CommandLine;
using System.Security.Cryptography;
using Appliance.Audit;
using Appliance.Audit.Chain;
using Appliance.Audit.Export;
using Appliance.Audit.Stores;

namespace Appliance.Cli.Commands;

/// <summary>`appliance audit verify`: check the audit chain offline, from an export or directly from the store.</summary>
internal static class AuditCommands
{
    public static Command Create()
    {
        var audit = new Command("audit", "The audit log: verify its chain offline, recompute usage and costs from it");
        audit.Subcommands.Add(Verify());
        audit.Subcommands.Add(AuditUsageCommand.Create());
        return audit;
    }

    private static Command Verify()
    {
        var source = AuditSource.Create(
            "The node whose chain to verify (default: every chain in the file or store)",
            "Accept an export without the signed end line (one written before exports had it); nothing then shows that the file was not cut short");
        var command = new Command("verify", "Verify the hash chains and the signed checkpoints; exit code 0 when every chain is intact, 1 when one is broken");
        foreach (var option in source.Options)
        {
            command.Options.Add(option);
        }

        command.SetAction(parse =>
        {
            if (source.Problem(parse) is { } problem)
            {
                Console.Error.WriteLine($"error: {problem}");
                return 2;
            }

            var (exportFile, storeFile, connection, node) = (parse.GetValue(source.File), parse.GetValue(source.Database), parse.GetValue(source.Postgres), source.Node);

            using var key = LoadKey(parse.GetValue(source.PublicKey));
            IReadOnlyList<(string Node, ChainVerification Verdict)> verdicts;
            try
            {
                verdicts = exportFile is not null ? VerifyExport(exportFile, parse.GetValue(node), key, parse.GetValue(source.AcceptNoEnd))
                    : storeFile is not null ? VerifyStore(OpenSqlite(storeFile), parse.GetValue(node), key)
                    : VerifyStore(new PostgresAuditStore(connection!), parse.GetValue(node), key);
            }
            catch (Exception exception) when (exception is IOException or InvalidDataException or InvalidOperationException
                or Microsoft.Data.Sqlite.SqliteException or Npgsql.NpgsqlException or ArgumentException)
            {
                Console.Error.WriteLine($"error: {exception.Message}");
                return 2;
            }

            foreach (var (chain, verdict) in verdicts)
            {
                // One chain: the line alone, as before clusters; several: each line names its node.
                var prefix = verdicts.Count > 1 ? $"node {chain}: " : string.Empty;
                Console.WriteLine(prefix + (verdict.Ok ? verdict.Message : $"BROKEN at entry {verdict.FirstBrokenSequence} ({verdict.Problem}): {verdict.Message}"));
            }

            return verdicts.All(v => v.Verdict.Ok) ? 0 : 1;
        });
        return command;
    }

    private static IReadOnlyList<(string, ChainVerification)> VerifyExport(FileInfo file, string? node, ECDsa? key, bool acceptNoEnd)
    {
        using var stream = OpenExport(file);
        return VerifyExport(stream, node, key, acceptNoEnd);
    }

    /// <summary>
    /// An export to read more than once, one pass at a time, never held whole. A pipe (--file &lt;(zcat export.jsonl.gz),
    /// /dev/stdin) cannot be read twice: it is copied to a temporary file first.
    /// </summary>
    internal static Stream OpenExport(FileInfo file)
    {
        var opened = new FileStream(file.FullName, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        if (opened.CanSeek)
        {
            return opened;
        }

        using (opened)
        {
            var copy = new FileStream(Path.GetTempFileName(), FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
            try
            {
                opened.CopyTo(copy);
                return copy;
            }
            catch
            {
                copy.Dispose(); // deletes the partial copy (a full /tmp)
                throw;
            }
        }
    }

    /// <summary>A new reader from the export's start (the stream stays open).</summary>
    internal static TextReader Reader(Stream export)
    {
        export.Position = 0;
        return new StreamReader(export, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16, leaveOpen: true);
    }

    internal static IReadOnlyList<(string Node, ChainVerification Verdict)> VerifyExport(Stream export, string? node, ECDsa? key, bool acceptNoEnd)
    {
        var scan = ExportVerifier.Scan(() => Reader(export));
        return ExportVerifier.Verify(scan, Chosen(ExportVerifier.Nodes(scan), node, "export"), key, witnesses: node is null, acceptNoEnd);
    }

    internal static SqliteAuditStore OpenSqlite(FileInfo database) =>
        database.Exists ? SqliteAuditStore.OpenReadOnly(database.FullName) : throw new IOException($"{database.FullName} does not exist");

    private static IReadOnlyList<(string, ChainVerification)> VerifyStore(SqlAuditStore opened, string? node, ECDsa? key)
    {
        using var store = opened;
        return VerifyOpenStore(store, node, key);
    }

    internal static IReadOnlyList<(string Node, ChainVerification Verdict)> VerifyOpenStore(SqlAuditStore store, string? node, ECDsa? key)
    {
        var verdicts = Chosen(store.Nodes(), node, "store").Select(chain => (chain, ChainVerifier.Verify(store.Chain(chain), store.Checkpoints(chain), key, store.Retention(chain)))).ToList();
        return node is null ? ChainWitness.Check(store, verdicts) : verdicts;
    }

    /// <summary>The chains to verify: the one asked for (which must be there), else all of them (at least one).</summary>
    private static IReadOnlyList<string> Chosen(IReadOnlyList<string> present, string? node, string where) => node switch
    {
        null when present.Count == 0 => throw new InvalidDataException($"the {where} holds no audit entries"),
        null => present,
        _ when present.Contains(node) => [node],
        _ => throw new InvalidDataException($"the {where} holds no chain of node '{node}' (it holds {(present.Count == 0 ? "none" : string.Join(", ", present))})"),
    };

    internal static ECDsa? LoadKey(FileInfo? file)
    {
        if (file is null)
        {
            return null;
        }

        var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(file.FullName));
        return key;
    }
}
