using Appliance.Api.Audit;
using Appliance.Api.Models;
using Appliance.Prompting;
using Appliance.Prompting.Jinja;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace Appliance.Api.OpenAi;

/// <summary>POST /v1/chat/completions.</summary>
internal static class ChatCompletionsApi
{
    public static async Task HandleAsync(HttpContext http, IModelCatalog catalog, IModelAccess access, IAccessRecorder recorder, IContentRecording content, Guardrails.GuardrailSet guardrails, IOptions<ApiLimits> options, TimeProvider time)
    {
        var limits = options.Value;
        using var fields = await JsonFields.ReadAsync(http.Request, limits.MaxBodyBytes, http.RequestAborted);
        var request = fields.Parse(f => ChatCompletionRequest.Read(f, limits));
        var model = ModelResolution.Resolve(catalog, access, http, request.Settings.Model);
        var guard = guardrails.For(http, model.Id, model.Aliases);
        guard.RefuseLogprobs(request.Settings.Logprobs, "logprobs");
        request = request with { Messages = guard.Screen(request.Messages, "messages") };
        // Compiled (or found compiled) here, on the request's thread: the engine only looks up masks.
        var answer = request.Tools.ConstraintFor(model, request.Format) ?? request.Format.ConstraintFor(model);
        RequestAudit.Of(http).Tools = request.Tools.AuditDetail(called: null);

        // Render and tokenise here, on the request's thread, never on the engine's.
        var (thinking, prompt) = Prompt(model, request, answer);
        var maxTokens = ModelResolution.MaxTokens(model, request.Settings.MaxTokens, prompt.Count, limits.MaxTokens, request.Settings.MaxTokensIsCeiling);
        var settings = request.Settings with { Constraint = thinking.Constraint(model, answer, maxTokens, request.Reasoning.Budget), Tools = request.Tools, OutputScreen = guard.OutputScreen };
        var choices = Enumerable.Range(0, request.Settings.N).Select(i => new ChoiceInput(i, prompt)).ToList();
        var header = new ResponseHeader(ResponseKind.Chat, $"chatcmpl-{Guid.NewGuid():N}", time.GetUtcNow().ToUnixTimeSeconds(), request.Settings.Model, ModelResolution.Fingerprint(model));
        RequestAudit.Of(http).PromptTokens = prompt.Count;
        if (content.Records(model.Id))
        {
            RequestAudit.Of(http).RecordConversation(request.Messages);
        }

        var accepted = await ModelResolution.AcceptAsync(recorder, http,
            () => ChoiceStreams.Submit(model, choices, settings, maxTokens, header.Id, Tenancy.Of(http), limits.RequestTimeout, Batches.BatchRequest.Is(http)));
        using var quota = accepted.Quota;
        await using var streams = accepted.Streams; // ends before the quota's charge is taken
        await GenerationResponder.RespondAsync(http, header, model, settings, choices, streams, prompt.Count, limits, thinking);
    }

    /// <summary>The conversation as the model reads it: rendered, a reasoning model's thinking planned, tokenised.</summary>
    internal static (ThinkingPlan Thinking, IReadOnlyList<int> Tokens) Prompt(ServedModel model, ChatCompletionRequest request, Appliance.Engine.Sampling.ITokenConstraint? answer)
    {
        var thinking = ThinkingPlan.For(model, RenderPrompt(model, request), request.Reasoning, answer is not null);
        return (thinking, model.Engine.Tokenizer.Encode(thinking.Prompt));
    }

    /// <summary>The prompt tokens a chat completion of <paramref name="request"/> would be charged (tokenize's messages form).</summary>
    internal static IReadOnlyList<int> PromptTokens(ServedModel model, ChatCompletionRequest request) =>
        Prompt(model, request, request.Tools.ConstraintFor(model, request.Format) ?? request.Format.ConstraintFor(model)).Tokens;

    private static string RenderPrompt(ServedModel model, ChatCompletionRequest request)
    {
        try
        {
            return Render(model, request, request.Messages);
        }
        catch (ChatTemplateRejectedException rejected)
        {
            // A strict template refuses two turns of one role in a row, which OpenAI takes: joined, they render. As
            // sent, templates that take them see each turn (the other dialects join them always).
            if (ConsecutiveTurns.Join(request.Messages) is var joined && joined.Count < request.Messages.Count)
            {
                try
                {
                    return Render(model, request, joined);
                }
                catch (ChatTemplateException)
                {
                    // refused for another reason: the first refusal says it
                }
            }

            // The model's own template refused the conversation (for example roles out of order).
            throw new OpenAiRequestException(OpenAiError.Invalid(rejected.Message, "messages", "invalid_conversation"));
        }
        catch (ChatTemplateException failure)
        {
            throw TemplateFailure.Of(failure, model, request.Messages, "messages");
        }
    }

    // tool_choice none: the model is not shown the tools (earlier tool turns still render).
    private static string Render(ServedModel model, ChatCompletionRequest request, IReadOnlyList<ChatMessage> messages) =>
        ToolPrompt.Render(model.ChatTemplate, messages, request.Tools.Choice == "none" ? null : request.Tools.Tools, format: model.ToolCallFormat, reasoning: request.Reasoning.Switch);
}
