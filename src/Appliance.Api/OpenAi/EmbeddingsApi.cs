using Appliance.Api.Audit;
using System.Runtime.InteropServices;
using System.Text.Json;
using Appliance.Api.Models;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace Appliance.Api.OpenAi;

/// <summary>
/// POST /v1/embeddings: input as a string, a list of strings, or OpenAI (cl100k_base) token ids; encoding_format float
/// or base64.
/// </summary>
internal static class EmbeddingsApi
{
    private const int MaxInputs = 2048;
    private static readonly HashSet<string> Known = ["model", "input", "encoding_format", "dimensions", "user"];

    public static async Task HandleAsync(HttpContext http, IModelCatalog catalog, IModelAccess access, IAccessRecorder recorder, IContentRecording content, Guardrails.GuardrailSet guardrails, IOptions<ApiLimits> options)
    {
        var limits = options.Value;
        using var fields = await JsonFields.ReadAsync(http.Request, limits.MaxBodyBytes, http.RequestAborted);
        var (modelName, inputs, base64) = fields.Parse(Read);
        var model = ModelResolution.ResolveEmbedder(catalog, access, http, modelName);
        var guard = guardrails.For(http, model.Id);
        inputs = [.. inputs.Select((text, i) => guard.Screen(text, inputs.Count == 1 ? "input" : $"input[{i}]"))];
        if (fields.OptionalInteger("dimensions", 1, 100_000) is { } dimensions && dimensions != model.Embedder.Dimensions)
        {
            throw new OpenAiRequestException(OpenAiError.Unsupported("dimensions", $"dimensions other than the model's {model.Embedder.Dimensions}"));
        }

        for (var i = 0; i < inputs.Count; i++)
        {
            var tokens = model.Embedder.CountTokens(inputs[i]);
            if (tokens > model.Embedder.MaxTokens)
            {
                throw new OpenAiRequestException(OpenAiError.Invalid(
                    $"Input {i} has {tokens} tokens; this model's maximum input length is {model.Embedder.MaxTokens} tokens.", inputs.Count == 1 ? "input" : $"input[{i}]", "context_length_exceeded"));
            }
        }

        if (content.Records(model.Id))
        {
            RequestAudit.Of(http).RecordContent(JsonSerializer.Serialize(inputs));
        }

        using var quota = await ModelResolution.AcceptAsync(recorder, http);

        using var deadline = new RequestDeadline(http, limits);
        var batch = await EncoderWork.RunAsync(http, deadline, modelName, (ran, cancellation) => ReplacedOnce.RunAsync(
            model.Embedder,
            () => ModelResolution.ResolveEmbedder(catalog, access, http, modelName).Embedder,
            embedder => embedder.EmbedAsync(inputs, cancellation, ran)));
        if (batch is null)
        {
            return;
        }

        var audit = RequestAudit.Of(http);
        (audit.PromptTokens, audit.CompletionTokens, audit.FinishReason) = (batch.PromptTokens, 0, "stop");
        var data = batch.Vectors.Select((vector, index) => new
        {
            @object = "embedding",
            index,
            embedding = base64 ? (object)Convert.ToBase64String(MemoryMarshal.AsBytes(vector.AsSpan())) : vector,
        });
        await Results.Json(new
        {
            @object = "list",
            data,
            model = modelName,
            usage = new { prompt_tokens = batch.PromptTokens, total_tokens = batch.PromptTokens },
        }).ExecuteAsync(http);
    }

    private static (string Model, List<string> Inputs, bool Base64) Read(JsonFields fields)
    {
        fields.RejectUnknown(Known);
        var model = fields.RequiredString("model");
        _ = fields.OptionalString("user");
        var format = fields.OptionalString("encoding_format") ?? "float";
        if (format is not ("float" or "base64"))
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"'encoding_format' must be 'float' or 'base64', not '{format}'.", "encoding_format"));
        }

        var input = fields.Element("input") ?? throw new OpenAiRequestException(OpenAiError.Invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter"));
        List<string> inputs = input.ValueKind switch
        {
            JsonValueKind.String => [input.GetString()!],
            JsonValueKind.Array when input.GetArrayLength() is 0 or > MaxInputs =>
                throw new OpenAiRequestException(OpenAiError.Invalid($"'input' must hold 1 to {MaxInputs} items.", "input")),
            JsonValueKind.Array when input.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) => [.. input.EnumerateArray().Select(e => e.GetString()!)],
            // Token ids are OpenAI's: LangChain's OpenAIEmbeddings sends cl100k_base's unless told not to. They are read
            // back to text, which this model's own tokenizer then takes.
            JsonValueKind.Array when input.EnumerateArray().All(e => e.ValueKind is JsonValueKind.Number) => [OpenAiTokenIds.Text(input, "input")],
            JsonValueKind.Array when input.EnumerateArray().All(e => e.ValueKind is JsonValueKind.Array) =>
                [.. input.EnumerateArray().Select((ids, i) => OpenAiTokenIds.Text(ids, $"input[{i}]"))],
            _ => throw JsonFields.TypeError("input", "a string or an array of strings"),
        };
        if (inputs.Any(string.IsNullOrEmpty))
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("'input' must not contain empty strings.", "input"));
        }

        return (model, inputs, format == "base64");
    }
}
