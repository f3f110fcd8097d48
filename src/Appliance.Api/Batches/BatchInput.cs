using System.Text;
using System.Text.Json;

namespace Appliance.Api.Batches;

/// <summary>One request of a batch's input file: its line (0-based), the caller's id for it, where it goes, its body.</summary>
public sealed record BatchLine(int Line, string CustomId, string Url, byte[] Body);

/// <summary>
/// Reads a batch input file (JSON Lines of {custom_id, method, url, body}, OpenAI's format), collecting every problem
/// with its line number rather than stopping at the first, so a caller fixes the file in one go.
/// </summary>
public static class BatchInput
{
    /// <summary>The endpoints a batch may call (OpenAI's, those the appliance serves).</summary>
    public static readonly string[] Endpoints = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"];

    private const int MaxReported = 20;

    /// <param name="maxBodyBytes">A body's most bytes: what the endpoint takes from a caller (Limits:MaxBodyBytes).</param>
    public static (List<BatchLine> Lines, List<BatchError> Errors) Read(byte[] content, int maxLines, long maxBodyBytes, string? endpoint = null)
    {
        var lines = new List<BatchLine>();
        var errors = new List<BatchError>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        if (!System.Text.Unicode.Utf8.IsValid(content))
        {
            errors.Add(new BatchError("invalid_file", "The file is not valid UTF-8 text."));
            return (lines, errors);
        }

        var start = 0;
        var number = 0;
        while (start < content.Length && errors.Count < MaxReported)
        {
            var end = Array.IndexOf(content, (byte)'\n', start);
            end = end < 0 ? content.Length : end;
            var text = content.AsSpan(start, end - start).TrimEnd((byte)'\r');
            start = end + 1;
            var line = number++;
            if (text.Trim((byte)' ').IsEmpty)
            {
                continue; // blank lines, a trailing newline among them
            }

            if (lines.Count >= maxLines)
            {
                errors.Add(new BatchError("too_many_requests", $"A batch file holds at most {maxLines} requests.", null, line + 1));
                break;
            }

            if (ReadLine(text, line, endpoint, ids, maxBodyBytes) is { } error)
            {
                errors.Add(error);
            }
            else
            {
                using var document = JsonDocument.Parse(text.ToArray());
                var root = document.RootElement;
                lines.Add(new BatchLine(line, root.GetProperty("custom_id").GetString()!, root.GetProperty("url").GetString()!,
                    Encoding.UTF8.GetBytes(root.GetProperty("body").GetRawText())));
            }
        }

        if (errors.Count == 0 && lines.Count == 0)
        {
            errors.Add(new BatchError("empty_file", "The file holds no requests."));
        }

        return (lines, errors);
    }

    private static BatchError? ReadLine(ReadOnlySpan<byte> text, int line, string? endpoint, HashSet<string> ids, long maxBodyBytes)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text.ToArray(), new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException exception)
        {
            return new BatchError("invalid_json_line", $"Line {line + 1} is not a JSON object: {exception.Message}", null, line + 1);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return new BatchError("invalid_json_line", $"Line {line + 1} is not a JSON object.", null, line + 1);
            }

            if (!root.TryGetProperty("custom_id", out var id) || id.ValueKind != JsonValueKind.String || id.GetString()!.Length is 0 or > 512)
            {
                return new BatchError("missing_custom_id", $"Line {line + 1} needs a custom_id: a string of 1 to 512 characters.", "custom_id", line + 1);
            }

            if (!ids.Add(id.GetString()!))
            {
                return new BatchError("duplicate_custom_id", $"Line {line + 1} repeats the custom_id '{id.GetString()}'; each request needs its own.", "custom_id", line + 1);
            }

            if (!root.TryGetProperty("method", out var method) || method.ValueKind != JsonValueKind.String || method.GetString() != "POST")
            {
                return new BatchError("invalid_method", $"Line {line + 1}: method must be \"POST\".", "method", line + 1);
            }

            if (!root.TryGetProperty("url", out var url) || url.ValueKind != JsonValueKind.String || !Endpoints.Contains(url.GetString(), StringComparer.Ordinal))
            {
                return new BatchError("invalid_url", $"Line {line + 1}: url must be one of {string.Join(", ", Endpoints)}.", "url", line + 1);
            }

            if (endpoint is not null && url.GetString() != endpoint)
            {
                return new BatchError("mismatched_url", $"Line {line + 1} calls {url.GetString()}, but the batch was created for {endpoint}; one batch calls one endpoint.", "url", line + 1);
            }

            if (!root.TryGetProperty("body", out var body) || body.ValueKind != JsonValueKind.Object)
            {
                return new BatchError("invalid_body", $"Line {line + 1} needs a body: the request's JSON object.", "body", line + 1);
            }

            if (System.Text.Encoding.UTF8.GetByteCount(body.GetRawText()) > maxBodyBytes)
            {
                return new BatchError("invalid_body", $"Line {line + 1}: its body is larger than the {maxBodyBytes} bytes a request may have.", "body", line + 1);
            }

            if (body.TryGetProperty("stream", out var stream) && stream.ValueKind == JsonValueKind.True)
            {
                return new BatchError("invalid_body", $"Line {line + 1} asks for a stream; a batch's answers are stored whole (leave stream out).", "body.stream", line + 1);
            }

            return null;
        }
    }
}
