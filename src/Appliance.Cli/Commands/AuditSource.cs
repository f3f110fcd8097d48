using System.CommandLine;

namespace Appliance.Cli.Commands;

/// <summary>
/// Where an audit command reads the log (an export, the SQLite store or a PostgreSQL store, exactly one), which chain,
/// and how to check it: the options `audit verify` and `audit usage` share, declared once.
/// </summary>
internal sealed class AuditSource
{
    private AuditSource(string nodeDescription, string acceptNoEndDescription)
    {
        Node = new Option<string?>("--node") { Description = nodeDescription };
        AcceptNoEnd = new Option<bool>("--accept-no-end") { Description = acceptNoEndDescription };
    }

    public Option<FileInfo?> File { get; } = new("--file") { Description = "A JSON Lines export (GET /audit/export)" };

    public Option<FileInfo?> Database { get; } = new("--db") { Description = "The SQLite audit store (Audit:SqlitePath, by default <data>/audit/audit.db)" };

    public Option<string?> Postgres { get; } = new("--postgres") { Description = "A PostgreSQL audit store: its Npgsql connection string (Audit:PostgresConnectionString)" };

    public Option<string?> Node { get; }

    public Option<FileInfo?> PublicKey { get; } = new("--public-key") { Description = "The checkpoint public key (PEM; GET /audit/public-key). Without it signatures are not checked" };

    public Option<bool> AcceptNoEnd { get; }

    public static AuditSource Create(string nodeDescription, string acceptNoEndDescription) => new(nodeDescription, acceptNoEndDescription);

    /// <summary>The options in the order help lists them.</summary>
    public IEnumerable<Option> Options => [File, Database, Postgres, Node, PublicKey, AcceptNoEnd];

    /// <summary>Null when exactly one of --file, --db and --postgres is given; else the error to print.</summary>
    public string? Problem(ParseResult parse) =>
        new object?[] { parse.GetValue(File), parse.GetValue(Database), parse.GetValue(Postgres) }.Count(o => o is not null) == 1
            ? null
            : "give exactly one of --file, --db or --postgres";
}
