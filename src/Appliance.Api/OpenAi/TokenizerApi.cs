using System.Text.Json;
using Appliance.Api.Audit;
using Appliance.Api.Models;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace Appliance.Api.OpenAi;

/// <summary>
/// vLLM's tokenizer endpoints (POST /tokenize, POST /detokenize, GET /tokenizer_info): a model's own tokenizer, for
/// clients that cannot fetch it (an evaluation harness's remote tokenizer on a network without the model hub). The
/// request may leave the model out when the caller may use one generative model only, as with a vLLM server. Nothing
/// runs on the model: the audit record is a request.tokenized one, and no usage is charged.
/// </summary>
internal static class TokenizerApi
{
    private static readonly HashSet<string> TokenizeFields = ["model", "prompt", "add_special_tokens", "return_token_strs"];
    private static readonly HashSet<string> DetokenizeFields = ["model", "tokens"];

    public static async Task<IResult> TokenizeAsync(HttpContext http, IModelCatalog catalog, IModelAccess access, IOptions<ApiLimits> options)
    {
        var limits = options.Value;
        using var fields = await JsonFields.ReadAsync(http.Request, limits.MaxBodyBytes, http.RequestAborted);
        var returnStrings = fields.Parse(f => f.OptionalBool("return_token_strs")) ?? false;
        var conversation = fields.Has("messages");
        var model = Resolve(http, catalog, access, fields.Parse(f => f.OptionalString("model")));
        var tokenizer = model.Engine.Tokenizer;
        IReadOnlyList<int> tokens;
        if (conversation)
        {
            tokens = ConversationTokens(fields, model, limits);
            RequestAudit.Of(http).RecordTokenizerOnly($"tokenized a conversation: {tokens.Count} tokens");
        }
        else
        {
            var (prompt, addSpecialTokens) = fields.Parse(f =>
            {
                f.RejectUnknown(TokenizeFields);
                return (f.RequiredString("prompt"), f.OptionalBool("add_special_tokens") ?? true);
            });
            tokens = addSpecialTokens ? tokenizer.EncodeWithSpecialTokens(prompt) : tokenizer.Encode(prompt);
            RequestAudit.Of(http).RecordTokenizerOnly($"tokenized {tokens.Count} tokens");
        }

        return Results.Json(new
        {
            count = tokens.Count,
            max_model_len = model.ContextLength,
            tokens,
            token_strs = returnStrings ? tokens.Select(t => OpenAiJson.Token(tokenizer, t).Token).ToList() : null,
        });
    }

    /// <summary>
    /// vLLM's messages form: the body of a chat completion (messages, tools, tool_choice, response_format, reasoning
    /// settings...), counted exactly as /v1/chat/completions would charge its prompt, with tokenize's own fields beside.
    /// </summary>
    private static IReadOnlyList<int> ConversationTokens(JsonFields fields, ServedModel model, ApiLimits limits)
    {
        if (fields.OptionalBool("add_generation_prompt") == false || fields.OptionalBool("continue_final_message") == true)
        {
            throw new OpenAiRequestException(OpenAiError.Unsupported("add_generation_prompt", "counting a conversation other than as a chat completion renders it (with the generation prompt)"));
        }

        if (fields.OptionalBool("add_special_tokens") == true)
        {
            throw new OpenAiRequestException(OpenAiError.Unsupported("add_special_tokens", "adding special tokens to a rendered conversation (its template writes them)"));
        }

        using var chat = WithModel(fields, model.Id, ConversationOnlyFields); // read while the request holds parts of it
        return ChatCompletionsApi.PromptTokens(model, chat.Parse(f => ChatCompletionRequest.Read(f, limits)));
    }

    /// <summary>A body as another endpoint's reader takes it: <paramref name="remove"/> taken out, the model resolved put in.</summary>
    internal static JsonFields WithModel(JsonFields fields, string model, IEnumerable<string> remove)
    {
        if (fields.Root.ValueKind != JsonValueKind.Object)
        {
            throw JsonFields.TypeError("body", "a JSON object");
        }

        var body = System.Text.Json.Nodes.JsonObject.Create(fields.Root)!.DeepClone().AsObject();
        foreach (var name in remove)
        {
            body.Remove(name);
        }

        body["model"] = model;
        return new JsonFields(JsonDocument.Parse(body.ToJsonString()));
    }

    private static readonly string[] ConversationOnlyFields = ["add_generation_prompt", "continue_final_message", "add_special_tokens", "return_token_strs"];

    public static async Task<IResult> DetokenizeAsync(HttpContext http, IModelCatalog catalog, IModelAccess access, IOptions<ApiLimits> options)
    {
        using var fields = await JsonFields.ReadAsync(http.Request, options.Value.MaxBodyBytes, http.RequestAborted);
        var (name, tokens) = fields.Parse(f =>
        {
            f.RejectUnknown(DetokenizeFields);
            var array = f.Element("tokens") ?? throw new OpenAiRequestException(OpenAiError.Invalid("Missing required parameter: 'tokens'.", "tokens", "missing_required_parameter"));
            if (array.ValueKind != JsonValueKind.Array)
            {
                throw JsonFields.TypeError("tokens", "an array of token ids");
            }

            int[] ids = [.. array.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var id) && id >= 0
                ? id
                : throw JsonFields.TypeError("tokens", "non-negative integer token ids"))];
            return (f.OptionalString("model"), ids);
        });
        var model = Resolve(http, catalog, access, name);
        var vocabulary = model.Engine.Model.VocabularySize;
        if (tokens.FirstOrDefault(t => t >= vocabulary, -1) is var outside and >= 0)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"Token id {outside} is outside the vocabulary of {vocabulary} of model '{model.Id}'.", "tokens"));
        }

        RequestAudit.Of(http).RecordTokenizerOnly($"detokenized {tokens.Length} tokens");
        return Results.Json(new { prompt = model.Engine.Tokenizer.Decode(tokens) });
    }

    /// <summary>What a client needs to tokenize and render as the model does (a subset of tokenizer_config.json, as vLLM answers).</summary>
    public static IResult Info(HttpContext http, IModelCatalog catalog, IModelAccess access, string? model)
    {
        var served = Resolve(http, catalog, access, model);
        RequestAudit.Of(http).RecordTokenizerOnly("read the tokenizer's settings");
        return Results.Json(new
        {
            model = served.Id,
            tokenizer_class = served.Engine.Tokenizer.GetType().Name,
            model_max_length = served.ContextLength,
            bos_token = served.ChatTemplate.BosToken,
            eos_token = served.ChatTemplate.EosToken,
            chat_template = served.ChatTemplate.ClientTemplate,
        });
    }

    /// <summary>The named model, or with none named the one generative model the caller may use (vLLM serves one).</summary>
    internal static ServedModel Resolve(HttpContext http, IModelCatalog catalog, IModelAccess access, string? name)
    {
        if (name is not null)
        {
            return ModelResolution.Resolve(catalog, access, http, name);
        }

        // Ready generative models only: a loading or failed one (an embedder too, until it is ready) is no candidate.
        var usable = catalog.Entries.Where(e => e.State == ModelLoadState.Ready && e.Served is not null && access.MayUse(http.User, e.Id, recordDenial: false, out _))
            .Select(e => e.Id).ToList();
        return usable switch
        {
            [var only] => ModelResolution.Resolve(catalog, access, http, only),
            [] => throw new OpenAiRequestException(OpenAiError.Invalid("No generative model is served to you here.", "model", "model_not_found")),
            _ => throw new OpenAiRequestException(OpenAiError.Invalid($"Several models are served to you ({string.Join(", ", usable)}): name one in 'model'.", "model", "missing_required_parameter")),
        };
    }
}
