using System.Text.Json.Nodes;
using Appliance.Api.Audit;
using Appliance.Api.OpenAi;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Appliance.Api.Batches;

/// <summary>/v1/files for the Batch API: upload a batch's input (checked line by line), list, read and delete files.</summary>
internal static class FilesApi
{
    public static async Task<IResult> UploadAsync(HttpContext http, IOptions<BatchOptions> options, IOptions<ApiLimits> limits, TimeProvider time)
    {
        var store = BatchApiRoutes.Store(http);
        var settings = options.Value;
        var owner = Owner(http);
        if (!http.Request.HasFormContentType)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("Upload a file as multipart/form-data with the fields 'file' and 'purpose'.", "file", "invalid_request"));
        }

        // The node's body limit is for JSON requests; an input file may be larger (Batches:MaxFileBytes).
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = settings.MaxFileBytes + 1024 * 1024;
        }

        http.Features.Set<IFormFeature>(new FormFeature(http.Request, new FormOptions { MultipartBodyLengthLimit = settings.MaxFileBytes + 1024 * 1024 }));
        IFormCollection form;
        try
        {
            form = await http.Request.ReadFormAsync(http.RequestAborted);
        }
        catch (Exception exception) when (exception is InvalidDataException or BadHttpRequestException)
        {
            throw new OpenAiRequestException(exception is BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } || exception.Message.Contains("limit", StringComparison.OrdinalIgnoreCase)
                ? OpenAiError.TooLarge(settings.MaxFileBytes)
                : OpenAiError.Invalid($"The upload could not be read: {exception.Message}", "file", "invalid_request"));
        }

        var purpose = form["purpose"].ToString();
        if (purpose.Length == 0)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("'purpose' is required; this appliance keeps files for the Batch API: send purpose=batch.", "purpose", "missing_required_parameter"));
        }

        if (purpose != StoredFile.BatchInput)
        {
            throw new OpenAiRequestException(OpenAiError.Unsupported("purpose", $"a file of purpose '{purpose}' (only 'batch')"));
        }

        if (form.Files.GetFile("file") is not { } upload)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("'file' is required: the batch's requests as JSON Lines.", "file", "missing_required_parameter"));
        }

        if (upload.Length > settings.MaxFileBytes)
        {
            throw new OpenAiRequestException(OpenAiError.TooLarge(settings.MaxFileBytes));
        }

        byte[] content;
        using (var buffer = new MemoryStream())
        {
            await upload.CopyToAsync(buffer, http.RequestAborted);
            content = buffer.ToArray();
        }

        var (lines, errors) = BatchInput.Read(content, settings.MaxRequests, limits.Value.MaxBodyBytes);
        if (errors.Count > 0)
        {
            var shown = string.Join(" ", errors.Take(5).Select(e => e.Message));
            throw new OpenAiRequestException(OpenAiError.Invalid(
                $"The file is not a valid batch input ({errors.Count}{(errors.Count >= 20 ? " or more" : string.Empty)} problem{(errors.Count == 1 ? string.Empty : "s")}): {shown}",
                "file", errors[0].Code));
        }

        var file = new StoredFile(StoredFile.NewId(), owner, purpose, FileName(upload.FileName), content.Length, time.GetUtcNow());
        RequestAudit.Of(http).Reason = $"upload {file.Id} ({lines.Count} requests, {content.Length} bytes)";
        await BatchApiRoutes.RecordAcceptedAsync(http);
        await store.AddFileAsync(file, content, CancellationToken.None); // recorded as done: not left half-way by a client that goes
        return Results.Json(BatchJson.File(file));
    }

    public static async Task<IResult> ListAsync(HttpContext http, string? purpose, int? limit, string? after, string? order)
    {
        var store = BatchApiRoutes.Store(http);
        var count = limit ?? 10_000;
        if (count is < 1 or > 10_000)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("'limit' must be between 1 and 10000.", "limit"));
        }

        if (order is not (null or "asc" or "desc"))
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("'order' must be asc or desc.", "order"));
        }

        var files = await store.FilesAsync(Owner(http), purpose, count + 1, after, order == "asc", http.RequestAborted);
        return Results.Json(BatchJson.List([.. files.Take(count).Select(BatchJson.File)], files.Count > count));
    }

    public static async Task<IResult> GetAsync(HttpContext http, string id)
    {
        var store = BatchApiRoutes.Store(http);
        return Results.Json(BatchJson.File(await OwnedAsync(http, store, id)));
    }

    public static async Task<IResult> ContentAsync(HttpContext http, string id)
    {
        var store = BatchApiRoutes.Store(http);
        var file = await OwnedAsync(http, store, id);
        var content = await store.FileContentAsync(id, http.RequestAborted) ?? throw NotFound(id);
        return Results.File(content, "application/octet-stream", file.Filename);
    }

    public static async Task<IResult> DeleteAsync(HttpContext http, string id)
    {
        var store = BatchApiRoutes.Store(http);
        await OwnedAsync(http, store, id);
        if (await store.FileInUseAsync(id, http.RequestAborted))
        {
            throw InUse(id);
        }

        RequestAudit.Of(http).Reason = $"delete {id}";
        await BatchApiRoutes.RecordAcceptedAsync(http);
        var deleted = await store.DeleteFileAsync(id, CancellationToken.None);
        if (!deleted && await store.FileInUseAsync(id, CancellationToken.None))
        {
            throw InUse(id); // a batch was created from it meanwhile
        }
        return Results.Json(new JsonObject { ["id"] = id, ["object"] = "file", ["deleted"] = deleted });
    }

    /// <summary>The caller's username: files and batches belong to it (an API key's owner for a key).</summary>
    internal static string Owner(HttpContext http) =>
        http.User.Identity?.Name is { Length: > 0 } name ? name : throw new OpenAiRequestException(OpenAiError.Forbidden());

    /// <summary>Another owner's file answers exactly as a missing one: ids are not confirmed to others.</summary>
    internal static async Task<StoredFile> OwnedAsync(HttpContext http, IBatchStore store, string id)
    {
        var file = await store.FileAsync(id, http.RequestAborted);
        return file is not null && file.Owner == Owner(http) ? file : throw NotFound(id);
    }

    private static OpenAiRequestException InUse(string id) => new(new OpenAiError(StatusCodes.Status409Conflict,
        $"The file {id} is the input of a batch that has not ended; cancel the batch, or delete the file once it has ended.", "invalid_request_error", "id", "file_in_use"));

    private static OpenAiRequestException NotFound(string id) =>
        new(new OpenAiError(StatusCodes.Status404NotFound, $"No such File object: {id}", "invalid_request_error", "id", "not_found"));

    /// <summary>The name as sent, without any folder part and within 255 characters.</summary>
    private static string FileName(string? sent)
    {
        var name = Path.GetFileName((sent ?? string.Empty).Replace('\\', '/'));
        name = new string([.. name.Where(c => !char.IsControl(c))]);
        return name.Length == 0 ? "batch.jsonl" : name.Length > 255 ? name[..255] : name;
    }
}
