using Appliance.Api.Audit;
using Appliance.Api.Models;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace Appliance.Api.OpenAi;

/// <summary>POST /v1/completions (legacy text completions): one or several prompts, n choices each.</summary>
internal static class CompletionsApi
{
    /// <summary>What OpenAI's legacy completions generate when the request names no max_tokens.</summary>
    private const int LegacyDefaultMaxTokens = 16;

    public static async Task HandleAsync(HttpContext http, IModelCatalog catalog, IModelAccess access, IAccessRecorder recorder, IContentRecording content, Guardrails.GuardrailSet guardrails, IOptions<ApiLimits> options, TimeProvider time)
    {
        var limits = options.Value;
        using var fields = await JsonFields.ReadAsync(http.Request, limits.MaxBodyBytes, http.RequestAborted);
        var request = fields.Parse(f => CompletionRequest.Read(f, limits));
        var model = ModelResolution.Resolve(catalog, access, http, request.Settings.Model);
        var guard = guardrails.For(http, model.Id, model.Aliases);
        guard.RefuseLogprobs(request.Settings.Logprobs, "logprobs");
        request = request with
        {
            Prompts = [.. request.Prompts.Select((p, i) => Screened(model, guard, p, request.Prompts.Count == 1 ? "prompt" : $"prompt[{i}]"))],
            Settings = request.Settings with { OutputScreen = guard.OutputScreen },
        };

        var prompts = request.Prompts.Select(p => p.TokenIds ?? model.Engine.Tokenizer.EncodeWithSpecialTokens(p.Text ?? string.Empty)).ToList();
        if (prompts.Any(p => p.Count == 0))
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("A prompt encodes to no tokens.", "prompt"));
        }

        // A client naming no max_tokens gets the model's DefaultMaxTokens, else OpenAI's legacy 16, cut to what the
        // context leaves; one it named is refused when the context cannot hold it. Each prompt leaves its own room: a
        // long prompt beside short ones does not cut their answers.
        var maxTokens = prompts.Select(p => request.Settings.MaxTokens is null
            ? ModelResolution.MaxTokens(model, model.Defaults.MaxTokens ?? LegacyDefaultMaxTokens, p.Count, limits.MaxTokens, requestedIsCeiling: true, input: "prompt")
            : ModelResolution.MaxTokens(model, request.Settings.MaxTokens, p.Count, limits.MaxTokens, request.Settings.MaxTokensIsCeiling, input: "prompt")).ToList();
        var n = request.Settings.N;
        // An echoed prompt reads as the client sent it; token ids as they decode.
        var echoes = request.Prompts.Select((p, i) => request.Echo ? p.Text ?? model.Engine.Tokenizer.Decode(prompts[i]) : null).ToList();
        var choices = prompts.SelectMany((p, i) => Enumerable.Range(0, n).Select(j => new ChoiceInput((i * n) + j, p, maxTokens[i], echoes[i]))).ToList();
        var header = new ResponseHeader(ResponseKind.Text, $"cmpl-{Guid.NewGuid():N}", time.GetUtcNow().ToUnixTimeSeconds(), request.Settings.Model, ModelResolution.Fingerprint(model));
        RequestAudit.Of(http).PromptTokens = prompts.Sum(p => p.Count);
        if (content.Records(model.Id))
        {
            RequestAudit.Of(http).RecordContent(System.Text.Json.JsonSerializer.Serialize(request.Prompts.Select(p => (object?)p.Text ?? p.TokenIds)));
        }

        var accepted = await ModelResolution.AcceptAsync(recorder, http,
            () => ChoiceStreams.Submit(model, choices, request.Settings, maxTokens.Min(), header.Id, Tenancy.Of(http), limits.RequestTimeout, Batches.BatchRequest.Is(http)));
        using var quota = accepted.Quota;
        await using var streams = accepted.Streams; // ends before the quota's charge is taken
        await GenerationResponder.RespondAsync(http, header, model, request.Settings, choices, streams, prompts.Sum(p => p.Count), limits);
    }

    /// <summary>A prompt as the guardrails leave it: token ids are read as text for them, and sent as text when masked.</summary>
    private static CompletionPrompt Screened(ServedModel model, Guardrails.RequestGuardrails guard, CompletionPrompt prompt, string param)
    {
        if (prompt.Text is { } text)
        {
            return prompt with { Text = guard.Screen(text, param) };
        }

        // Ids outside the vocabulary are the engine's to refuse (400), not the decoder's to fail on.
        if (!guard.ScreensInput || prompt.TokenIds!.Any(id => (uint)id >= (uint)model.Engine.Model.VocabularySize))
        {
            return prompt;
        }

        var decoded = model.Engine.Tokenizer.Decode(prompt.TokenIds!);
        var screened = guard.Screen(decoded, param);
        return ReferenceEquals(screened, decoded) ? prompt : new CompletionPrompt(screened, null);
    }
}
