using Appliance.Audit.Pricing;
using System.Globalization;
using Appliance.Audit.Chain;
using Appliance.Audit.Cluster;
using Appliance.Audit.Export;
using Appliance.Audit.Stores;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Appliance.Api.Audit;

/// <summary>The audit log's own chain and key, as the audit endpoints read them.</summary>
public interface IAuditReader
{
    string Node { get; }

    IAuditStore Store { get; }

    /// <summary>Every chain of the store (all nodes sharing it), as auditors read them.</summary>
    ClusterAuditView Chains { get; }

    /// <summary>The checkpoint public key (PEM) auditors verify with.</summary>
    string PublicKeyPem { get; }

    /// <summary>The content keys, for reading recorded prompts and completions.</summary>
    Appliance.Audit.Content.ContentVault Vault { get; }
}

/// <summary>
/// /audit (policy audit): search entries, verify the chains, export them as JSON Lines. Every node's chain in the store
/// is covered (all the nodes of a cluster on one PostgreSQL, whichever node answers), or one with <c>node</c>. Errors are
/// RFC 7807. Every read is itself recorded by the audit middleware.
/// </summary>
public static class AuditApi
{
    private const int MaxLimit = 1000;

    public static RouteGroupBuilder MapAuditApi(this IEndpointRouteBuilder endpoints)
    {
        var audit = endpoints.MapGroup("/audit");
        audit.MapGet("/events", Events);
        audit.MapGet("/events/{seq:long}/content", Content);
        audit.MapGet("/verify", Verify);
        audit.MapGet("/usage", Usage);
        audit.MapGet("/export", Export);
        audit.MapGet("/public-key", (IAuditReader reader) => Results.Text(reader.PublicKeyPem, "application/x-pem-file"));
        return audit;
    }

    /// <summary>The JSON Lines export at another address (the console's, behind its cookie session); recorded as an audit read.</summary>
    public static RouteHandlerBuilder MapAuditExport(this IEndpointRouteBuilder routes, string pattern) => routes.MapGet(pattern, Export);

    private static async Task<IResult> Events(HttpContext http, IAuditReader reader, IAccessRecorder recorder)
    {
        var errors = new Dictionary<string, string[]>();
        var q = http.Request.Query;
        var node = Text(q["node"]);
        var query = new AuditQuery
        {
            From = Time(q["from"], "from", errors),
            To = Time(q["to"], "to", errors),
            Username = Text(q["user"]),
            Client = Text(q["client"]),
            Model = Text(q["model"]),
            Kind = Text(q["kind"]),
            Outcome = Text(q["outcome"]),
            Limit = (int)Number(q["limit"], "limit", 1, MaxLimit, 100, errors),
        };
        if (query.Outcome is not (null or "accepted" or "refused"))
        {
            errors["outcome"] = ["must be accepted or refused"];
        }

        if (UnknownNode(reader, node) is { } unknown)
        {
            return unknown;
        }

        var cursor = Cursor(Text(q["after"]), node, reader.Chains, errors);
        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors, title: "The audit query is not valid.");
        }

        if (!await recorder.TryAcceptAsync(http))
        {
            return AuditUnavailable.Problem("this read");
        }

        var page = reader.Chains.Page(query, node, cursor);
        return Results.Json(new
        {
            node = reader.Node,
            data = page.Entries.Select(e => System.Text.Json.Nodes.JsonNode.Parse(AuditExport.EntryLine(e))),
            next = page.Next?.Encode(),
        });
    }

    /// <summary>
    /// <c>after</c> is the <c>next</c> cursor of the previous page, or (paging one chain, as before clusters) the last
    /// sequence number seen.
    /// </summary>
    private static AuditCursor? Cursor(string? after, string? node, ClusterAuditView chains, Dictionary<string, string[]> errors)
    {
        if (after is null)
        {
            return null;
        }

        if (long.TryParse(after, NumberStyles.None, CultureInfo.InvariantCulture, out var sequence))
        {
            // A store that cannot be read here fails the read itself a moment later, with 503.
            IReadOnlyList<string> inScope;
            try
            {
                inScope = chains.Chains(node);
            }
            catch (System.Data.Common.DbException)
            {
                inScope = node is null ? [] : [node];
            }

            if (inScope.Count > 1)
            {
                errors["after"] = [$"a sequence number pages one chain, and this store holds {inScope.Count} ({string.Join(", ", inScope)}): "
                    + "name one with 'node', or pass the 'next' cursor of the previous page"];
                return null;
            }

            return new AuditCursor(newestFirst: false, inScope.ToDictionary(chain => chain, _ => sequence));
        }

        if (!AuditCursor.TryParse(after, out var cursor, out var why) || cursor!.NewestFirst)
        {
            errors["after"] = [why ?? "is a cursor for newest-first paging"];
            return null;
        }

        return cursor;
    }

    /// <summary>
    /// A recorded prompt and completion, decrypted for the auditor (and the read recorded); 410 once its key is
    /// destroyed. Content keys stay on the node that sealed them, so another node's entry is read on that node.
    /// </summary>
    private static async Task<IResult> Content(long seq, HttpContext http, IAuditReader reader, IAccessRecorder recorder)
    {
        var node = Text(http.Request.Query["node"]) ?? reader.Node;
        var entry = reader.Chains.Entry(node, seq);
        if (entry?.Record.Content is not { } sealedContent)
        {
            return Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "No recorded content",
                detail: $"Entry {seq} of node '{node}' has no recorded content (its model does not record content, or there is no such entry).");
        }

        if (node != reader.Node)
        {
            return Results.Problem(statusCode: StatusCodes.Status409Conflict, title: "Content sealed on another node",
                detail: $"Entry {seq} was recorded on node '{node}', whose content keys never leave it; read it on that node (this is '{reader.Node}').");
        }

        if (!await recorder.TryAcceptAsync(http))
        {
            return AuditUnavailable.Problem("this read");
        }

        return reader.Vault.Open(sealedContent) is { } text
            ? Results.Json(new { node, seq, content = System.Text.Json.Nodes.JsonNode.Parse(text) })
            : Results.Problem(statusCode: StatusCodes.Status410Gone, title: "Content erased",
                detail: $"The key that sealed entry {seq}'s content was destroyed; the entry still verifies, its content cannot be read.");
    }

    private static async Task<IResult> Usage(HttpContext http, IAuditReader reader, PriceList prices, IAccessRecorder recorder, TimeProvider time)
    {
        if (UsageReport.Parse(http, time) is not { } query)
        {
            return UsageReport.Invalid(http, time);
        }

        if (AuditApi.UnknownNode(reader, query.Node) is { } unknown)
        {
            return unknown;
        }

        if (!await recorder.TryAcceptAsync(http))
        {
            return AuditUnavailable.Problem("this read");
        }

        return UsageReport.Build(reader, prices, query, replicaSeconds: null);
    }

    /// <summary>
    /// Incremental by default (the entries after the last signed checkpoint an earlier call verified, off the writer's
    /// lock); <c>full=true</c> rehashes the whole chain, which also finds a row changed before that checkpoint.
    /// </summary>
    private static async Task<IResult> Verify(HttpContext http, IAuditReader reader, IAccessRecorder recorder, IncrementalVerifier verifier)
    {
        var fullText = http.Request.Query["full"].ToString();
        if (fullText.Length > 0 && !bool.TryParse(fullText, out _))
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["full"] = ["must be true or false"] });
        }

        var node = Text(http.Request.Query["node"]);
        if (UnknownNode(reader, node) is { } unknown)
        {
            return unknown;
        }

        if (!await recorder.TryAcceptAsync(http))
        {
            return AuditUnavailable.Problem("this read");
        }

        using var key = System.Security.Cryptography.ECDsa.Create();
        key.ImportFromPem(reader.PublicKeyPem);
        var full = fullText.Length > 0 && bool.Parse(fullText);
        var verdicts = reader.Chains.Verify(verifier, key, full, node);
        var broken = verdicts.Where(v => !v.Verification.Ok).ToList();
        var body = new Dictionary<string, object?>
        {
            ["node"] = reader.Node,
            ["ok"] = broken.Count == 0,
            ["message"] = broken.Count == 0
                ? $"OK: {verdicts.Count} chain{(verdicts.Count == 1 ? string.Empty : "s")} ({string.Join(", ", verdicts.Select(v => v.Node))}), no alteration found"
                : $"BROKEN: {string.Join("; ", broken.Select(v => $"node {v.Node}: {v.Verification.Message}"))}",
            ["chains"] = verdicts.Select(Verdict).ToList(),
        };
        if (verdicts.Count == 1)
        {
            // One chain (a single node, or ?node=): its fields at the top as well, as before clusters.
            foreach (var (name, value) in Verdict(verdicts[0]).Where(field => field.Key is not ("node" or "ok")))
            {
                body[name] = value;
            }
        }

        return Results.Json(body);
    }

    private static Dictionary<string, object?> Verdict(ChainVerdict verdict) => new()
    {
        ["node"] = verdict.Node,
        ["ok"] = verdict.Verification.Ok,
        ["full"] = verdict.Verification.From is null,
        ["verifiedFrom"] = verdict.Verification.From?.Sequence,
        ["entries"] = verdict.Verification.EntriesChecked,
        ["checkpoints"] = verdict.Verification.CheckpointsChecked,
        ["problem"] = verdict.Verification.Problem.ToString(),
        ["firstBrokenSequence"] = verdict.Verification.FirstBrokenSequence,
        ["message"] = verdict.Verification.Message,
    };

    /// <summary>Every chain (or the one named by <c>node</c>), each as its retention record, entries and checkpoints.</summary>
    private static async Task Export(HttpContext http, IAuditReader reader, IAccessRecorder recorder, CheckpointSigner signer, TimeProvider time)
    {
        var node = Text(http.Request.Query["node"]);
        if (UnknownNode(reader, node) is { } unknown)
        {
            await unknown.ExecuteAsync(http);
            return;
        }

        if (!await recorder.TryAcceptAsync(http))
        {
            await AuditUnavailable.Problem("this read").ExecuteAsync(http);
            return;
        }

        http.Response.ContentType = "application/x-ndjson";
        http.Response.Headers.ContentDisposition = $"attachment; filename=\"audit-{FileName(node ?? "all-nodes")}.jsonl\"";
        // Ends with a line signed with the audit key saying what each chain's part holds: a download cut short
        // answers 200 all the same, and would otherwise verify as a shorter chain.
        await AuditExport.WriteAllAsync(http.Response.Body, reader.Store, reader.Chains.Chains(node), signer, time, http.RequestAborted);
    }

    /// <summary>404 for a node with no chain in the store (a typo must not read as an empty, verified chain).</summary>
    internal static IResult? UnknownNode(IAuditReader reader, string? node)
    {
        if (node is null || node == reader.Node)
        {
            return null;
        }

        IReadOnlyList<string> chains;
        try
        {
            chains = reader.Chains.Chains(null);
        }
        catch (System.Data.Common.DbException)
        {
            return AuditUnavailable.Problem("this read");
        }

        return chains.Contains(node)
            ? null
            : Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "No such node",
                detail: $"The audit store holds no chain of node '{node}'; it holds {(chains.Count == 0 ? "none yet" : string.Join(", ", chains))}.");
    }

    private static string FileName(string text) => new([.. text.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_')]);

    internal static string? Text(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    internal static DateTimeOffset? Time(string? value, string name, Dictionary<string, string[]> errors)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
        {
            return time;
        }

        errors[name] = ["must be an ISO 8601 time, e.g. 2026-11-28T09:00:00Z"];
        return null;
    }

    private static long Number(string? value, string name, long min, long max, long fallback, Dictionary<string, string[]> errors)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return fallback;
        }

        if (long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number) && number >= min && number <= max)
        {
            return number;
        }

        errors[name] = [$"must be a whole number from {min} to {max}"];
        return fallback;
    }
}
