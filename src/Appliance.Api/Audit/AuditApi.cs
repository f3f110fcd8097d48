using System.Globalization;
using Appliance.Audit.Chain;
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

    /// <summary>The checkpoint public key (PEM) auditors verify with.</summary>
    string PublicKeyPem { get; }

    /// <summary>The content keys, for reading recorded prompts and completions.</summary>
    Appliance.Audit.Content.ContentVault Vault { get; }
}

/// <summary>
/// /audit (policy audit): search entries, verify the chain, export it as JSON Lines. Errors are RFC 7807. Every read is
/// itself recorded by the audit middleware.
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
        var query = new AuditQuery
        {
            From = Time(q["from"], "from", errors),
            To = Time(q["to"], "to", errors),
            Username = Text(q["user"]),
            Client = Text(q["client"]),
            Model = Text(q["model"]),
            Kind = Text(q["kind"]),
            Outcome = Text(q["outcome"]),
            AfterSequence = Number(q["after"], "after", 0, long.MaxValue, 0, errors),
            Limit = (int)Number(q["limit"], "limit", 1, MaxLimit, 100, errors),
        };
        if (query.Outcome is not (null or "accepted" or "refused"))
        {
            errors["outcome"] = ["must be accepted or refused"];
        }

        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors, title: "The audit query is not valid.");
        }

        if (!await recorder.TryAcceptAsync(http))
        {
            return AuditUnavailable.Problem("this read");
        }

        var entries = reader.Store.Query(reader.Node, query);
        return Results.Json(new
        {
            node = reader.Node,
            data = entries.Select(e => System.Text.Json.Nodes.JsonNode.Parse(AuditExport.EntryLine(e))),
            next = entries.Count == query.Limit ? entries[^1].Sequence : (long?)null,
        });
    }

    /// <summary>A recorded prompt and completion, decrypted for the auditor (and the read recorded); 410 once its key is destroyed.</summary>
    private static async Task<IResult> Content(long seq, HttpContext http, IAuditReader reader, IAccessRecorder recorder)
    {
        var entry = reader.Store.Query(reader.Node, new AuditQuery { AfterSequence = seq - 1, Limit = 1 }).FirstOrDefault(e => e.Sequence == seq);
        if (entry?.Record.Content is not { } sealedContent)
        {
            return Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "No recorded content",
                detail: $"Entry {seq} has no recorded content (its model does not record content, or there is no such entry).");
        }

        if (!await recorder.TryAcceptAsync(http))
        {
            return AuditUnavailable.Problem("this read");
        }

        return reader.Vault.Open(sealedContent) is { } text
            ? Results.Json(new { node = reader.Node, seq, content = System.Text.Json.Nodes.JsonNode.Parse(text) })
            : Results.Problem(statusCode: StatusCodes.Status410Gone, title: "Content erased",
                detail: $"The key that sealed entry {seq}'s content was destroyed; the entry still verifies, its content cannot be read.");
    }

    private static async Task<IResult> Usage(HttpContext http, IAuditReader reader, IAccessRecorder recorder, TimeProvider time)
    {
        if (UsageReport.Parse(http, time) is not { } query)
        {
            return UsageReport.Invalid(http, time);
        }

        if (!await recorder.TryAcceptAsync(http))
        {
            return AuditUnavailable.Problem("this read");
        }

        return Results.Json(UsageReport.Build(reader, query, replicaSeconds: null));
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

        if (!await recorder.TryAcceptAsync(http))
        {
            return AuditUnavailable.Problem("this read");
        }

        using var key = System.Security.Cryptography.ECDsa.Create();
        key.ImportFromPem(reader.PublicKeyPem);
        var full = fullText.Length > 0 && bool.Parse(fullText);
        var verdict = verifier.Verify(reader.Store, reader.Node, key, full);
        return Results.Json(new
        {
            node = reader.Node,
            ok = verdict.Ok,
            full = verdict.From is null,
            verifiedFrom = verdict.From?.Sequence,
            entries = verdict.EntriesChecked,
            checkpoints = verdict.CheckpointsChecked,
            problem = verdict.Problem.ToString(),
            firstBrokenSequence = verdict.FirstBrokenSequence,
            message = verdict.Message,
        });
    }

    private static async Task Export(HttpContext http, IAuditReader reader, IAccessRecorder recorder)
    {
        if (!await recorder.TryAcceptAsync(http))
        {
            await AuditUnavailable.Problem("this read").ExecuteAsync(http);
            return;
        }

        http.Response.ContentType = "application/x-ndjson";
        http.Response.Headers.ContentDisposition = $"attachment; filename=\"audit-{reader.Node}.jsonl\"";
        await AuditExport.WriteAsync(http.Response.Body, reader.Store.Chain(reader.Node), reader.Store.Checkpoints(reader.Node), http.RequestAborted,
            reader.Store.Retention(reader.Node));
    }

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
