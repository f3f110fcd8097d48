using System.CommandLine;
using System.Security.Cryptography;
using Appliance.Audit.Chain;
using Appliance.Audit.Export;
using Appliance.Audit.Stores;

namespace Appliance.Cli.Commands;

/// <summary>`appliance audit verify`: check the audit chain offline, from an export or directly from the store.</summary>
internal static class AuditCommands
{
    public static Command Create()
    {
        var audit = new Command("audit", "The audit log: verify its chain offline");
        audit.Subcommands.Add(Verify());
        return audit;
    }

    private static Command Verify()
    {
        var file = new Option<FileInfo?>("--file") { Description = "A JSON Lines export (GET /audit/export)" };
        var database = new Option<FileInfo?>("--db") { Description = "The SQLite audit store (Audit:SqlitePath, by default <data>/audit/audit.db)" };
        var postgres = new Option<string?>("--postgres") { Description = "A PostgreSQL audit store: its Npgsql connection string (Audit:PostgresConnectionString)" };
        var node = new Option<string?>("--node") { Description = "The node whose chain to verify in a store (default: the only one)" };
        var publicKey = new Option<FileInfo?>("--public-key") { Description = "The checkpoint public key (PEM; GET /audit/public-key). Without it signatures are not checked" };
        var command = new Command("verify", "Verify the hash chain and the signed checkpoints; exit code 0 when intact, 1 when broken")
        {
            file, database, postgres, node, publicKey,
        };
        command.SetAction(parse =>
        {
            var (exportFile, storeFile, connection) = (parse.GetValue(file), parse.GetValue(database), parse.GetValue(postgres));
            if (new object?[] { exportFile, storeFile, connection }.Count(o => o is not null) != 1)
            {
                Console.Error.WriteLine("error: give exactly one of --file, --db or --postgres");
                return 2;
            }

            using var key = LoadKey(parse.GetValue(publicKey));
            ChainVerification verdict;
            try
            {
                verdict = exportFile is not null ? VerifyExport(exportFile, key)
                    : storeFile is not null ? VerifyStore(OpenSqlite(storeFile), parse.GetValue(node), key)
                    : VerifyStore(new PostgresAuditStore(connection!), parse.GetValue(node), key);
            }
            catch (Exception exception) when (exception is IOException or InvalidDataException or InvalidOperationException
                or Microsoft.Data.Sqlite.SqliteException or Npgsql.NpgsqlException or ArgumentException)
            {
                Console.Error.WriteLine($"error: {exception.Message}");
                return 2;
            }

            Console.WriteLine(verdict.Ok ? verdict.Message : $"BROKEN at entry {verdict.FirstBrokenSequence} ({verdict.Problem}): {verdict.Message}");
            return verdict.Ok ? 0 : 1;
        });
        return command;
    }

    private static ChainVerification VerifyExport(FileInfo file, ECDsa? key)
    {
        using var reader = file.OpenText();
        var (entries, checkpoints, retention) = AuditExport.Read(reader);
        var nodes = entries.Select(e => e.Node).Distinct().ToList();
        return nodes.Count > 1
            ? throw new InvalidDataException($"the export holds the chains of several nodes ({string.Join(", ", nodes)}); export one node per file")
            : ChainVerifier.Verify(entries, checkpoints, key, retention);
    }

    private static SqliteAuditStore OpenSqlite(FileInfo database) =>
        database.Exists ? SqliteAuditStore.OpenReadOnly(database.FullName) : throw new IOException($"{database.FullName} does not exist");

    private static ChainVerification VerifyStore(SqlAuditStore opened, string? node, ECDsa? key)
    {
        using var store = opened;
        var chain = node ?? store.Nodes() switch
        {
            [var only] => only,
            [] => throw new InvalidDataException("the store holds no audit entries"),
            var several => throw new InvalidDataException($"the store holds several chains ({string.Join(", ", several)}); choose one with --node"),
        };
        return ChainVerifier.Verify(store.Chain(chain), store.Checkpoints(chain), key, store.Retention(chain));
    }

    private static ECDsa? LoadKey(FileInfo? file)
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
