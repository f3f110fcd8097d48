using System.Text;
using Appliance.Api.Audit;
using Appliance.Api.Models;
using Appliance.Api.OpenAi;
using Appliance.Engine.Requests;
using Appliance.Prompting;
using Appliance.Prompting.Jinja;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace Appliance.Api.Anthropic;

/// <summary>
/// POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API over the same models, identity, quotas,
/// fair scheduling and audit as chat completions (it maps onto the same prompt, constraint and engine path).
/// </summary>
internal static class MessagesApi
{
    public static async Task HandleAsync(HttpContext http, IModelCatalog catalog, IModelAccess access, IAccessRecorder recorder, IContentRecording content, Guardrails.GuardrailSet guardrails, IOptions<ApiLimits> options)
    {
        var limits = options.Value;
        using var fields = await JsonFields.ReadAsync(http.Request, limits.MaxBodyBytes, http.RequestAborted);
        var request = fields.Parse(f => MessagesRequest.Read(f, limits));
        var model = ModelResolution.Resolve(catalog, access, http, request.Settings.Model);
        var guard = guardrails.For(http, model.Id, model.Aliases);
        request = request with { Messages = guard.Screen(request.Messages, "messages") };
        var answerConstraint = request.Tools.ConstraintFor(model);
        var (rendered, prefill) = Render(model, request);
        var thinking = ThinkingPlan.For(model, rendered, request.Reasoning, answerConstraint is not null, prefill);
        var prompt = model.Engine.Tokenizer.Encode(thinking.Prompt);
        // A ceiling, as Claude clients mean it: whatever room the context leaves, up to the appliance's limit.
        var maxTokens = ModelResolution.MaxTokens(model, Math.Min(request.Settings.MaxTokens ?? int.MaxValue, Math.Max(model.ContextLength - prompt.Count, 1)), prompt.Count, limits.MaxTokens);
        var settings = request.Settings with { Constraint = thinking.Constraint(model, answerConstraint, maxTokens, request.Reasoning.Budget), Tools = request.Tools, OutputScreen = guard.OutputScreen };
        var audit = RequestAudit.Of(http);
        audit.PromptTokens = prompt.Count;
        audit.Tools = request.Tools.AuditDetail(called: null);
        if (content.Records(model.Id))
        {
            audit.RecordConversation(request.Messages);
        }

        var id = "msg_" + Guid.NewGuid().ToString("N")[..24];
        var tenant = Tenancy.Of(http);
        var accepted = await ModelResolution.AcceptAsync(recorder, http,
            () => ChoiceStreams.Submit(model, [new ChoiceInput(0, prompt)], settings, maxTokens, id, tenant, limits.RequestTimeout, Batches.BatchRequest.Is(http)));
        using var quota = accepted.Quota;
        await using var streams = accepted.Streams; // ends before the quota's charge is taken
        audit.FinishReason = "cancelled";
        using var deadline = new RequestDeadline(http, limits);
        var answer = new Answer(http, model, settings, request.Settings.Model, id, prompt.Count, thinking.Reader(), request.Reasoning.Omitted);
        await deadline.RunAsync(
            token => settings.Stream ? answer.StreamAsync(streams, token) : answer.CollectAsync(streams, token),
            () => answer.Whole, streams, () => TellTimeoutAsync(http));
    }

    /// <summary>The timeout as an error answer, or as an error event once the stream has begun.</summary>
    private static async Task TellTimeoutAsync(HttpContext http)
    {
        const string Message = GenerationResponder.TimeoutMessage;
        if (!http.Response.HasStarted)
        {
            await new OpenAiError(StatusCodes.Status504GatewayTimeout, Message, "timeout_error", null, "timeout").WriteAsync(http);
        }
        else
        {
            await RequestDeadline.SendFrameAsync(http.Response, CancellationToken.None, MessagesJson.Frame("error", MessagesJson.Error(StatusCodes.Status504GatewayTimeout, Message)));
        }
    }

    public static async Task CountTokensAsync(HttpContext http, IModelCatalog catalog, IModelAccess access, IOptions<ApiLimits> options)
    {
        var limits = options.Value;
        using var fields = await JsonFields.ReadAsync(http.Request, limits.MaxBodyBytes, http.RequestAborted);
        var request = fields.Parse(f => MessagesRequest.Read(f, limits, countOnly: true));
        var model = ModelResolution.Resolve(catalog, access, http, request.Settings.Model);
        var (rendered, prefill) = Render(model, request);
        var count = model.Engine.Tokenizer.Encode(ThinkingPlan.For(model, rendered, request.Reasoning, request.Tools.Forced, prefill).Prompt).Count;
        RequestAudit.Of(http).RecordTokenizerOnly($"counted {count} input tokens"); // not a model request: no usage, no charge
        http.Response.ContentType = "application/json";
        await http.Response.Body.WriteAsync(MessagesJson.InputTokens(count), http.RequestAborted);
    }

    /// <summary>The rendered conversation and, when the last turn is the assistant's, the prefill the answer continues.</summary>
    private static (string Rendered, string? Prefill) Render(ServedModel model, MessagesRequest request)
    {
        try
        {
            var tools = request.Tools.Choice == "none" ? null : request.Tools.Tools;
            // A last assistant turn is a prefill: the answer continues it rather than starting a new turn.
            return request.Messages[^1] is { Role: "assistant", ToolCalls: null } prefill && request.Messages.Count > 1
                ? (ToolPrompt.Render(model.ChatTemplate, [.. request.Messages.Take(request.Messages.Count - 1)], tools, format: model.ToolCallFormat, reasoning: request.Reasoning.Switch), prefill.Content)
                : (ToolPrompt.Render(model.ChatTemplate, request.Messages, tools, format: model.ToolCallFormat, reasoning: request.Reasoning.Switch), null);
        }
        catch (ChatTemplateRejectedException rejected)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid(rejected.Message, "messages", "invalid_conversation"));
        }
        catch (ChatTemplateException failure)
        {
            throw TemplateFailure.Of(failure, model, request.Messages, "messages");
        }
    }

    /// <summary>One answer being generated: collected into a message, or streamed as Anthropic's events.</summary>
    private sealed class Answer(HttpContext http, ServedModel model, GenerationSettings settings, string requestedModel, string id, int inputTokens, ThoughtReader? thought, bool omitThought)
    {
        private string? _stopString;

        public int OutputTokens { get; private set; }

        /// <summary>Whether the answer is whole and audited so: a client leaving or the deadline during its last frames does not undo that.</summary>
        public bool Whole { get; private set; }

        /// <summary>Input tokens the prefix cache served.</summary>
        public int CachedTokens { get; private set; }

        public async Task CollectAsync(ChoiceStreams streams, CancellationToken cancellationToken)
        {
            var text = new StringBuilder();
            FinishReason? finish = null;
            await foreach (var item in streams.ReadAllAsync(cancellationToken))
            {
                if (item.Error is not null || item.Delta?.FinishReason == FinishReason.Cancelled)
                {
                    GenerationResponder.Finished(http, item.Error is null ? "cancelled" : "error", streams.GeneratedTokens);
                    await GenerationResponder.EngineFailure(item).WriteAsync(http);
                    return;
                }

                Take(item.Delta!, text);
                finish = item.Delta!.FinishReason ?? finish;
            }

            var (content, calls) = Read(text.ToString());
            var stop = StopReason(finish, calls, _stopString);
            GenerationResponder.Finished(http, AuditReason(stop), OutputTokens);
            Whole = true;
            RequestAudit.Of(http).Tools = settings.Tools?.AuditDetail(calls);
            http.Response.ContentType = "application/json";
            await http.Response.Body.WriteAsync(MessagesJson.Message(id, requestedModel, thought?.Thought is { } whole ? (omitThought ? string.Empty : whole) : null, content, calls, stop, calls.Count > 0 ? null : _stopString, inputTokens, OutputTokens, CachedTokens), http.RequestAborted);
        }

        public async Task StreamAsync(ChoiceStreams streams, CancellationToken cancellationToken)
        {
            var response = http.Response;
            response.ContentType = "text/event-stream";
            response.Headers.CacheControl = "no-cache";
            response.Headers["X-Accel-Buffering"] = "no";
            await Send("message_start", MessagesJson.MessageStart(id, requestedModel, inputTokens), cancellationToken);
            await Send("ping", """{"type": "ping"}"""u8.ToArray(), cancellationToken);
            var held = settings.Tools is { Active: true } tools ? new ToolCallStream(model.ToolCallFormat, incremental: tools.Forced, ToolUse.IdsFor(model.ToolCallFormat, "toolu_")) : null;
            var text = new StringBuilder();
            var block = -1; // the open text block's index, or -1
            var thinkingBlock = -1;
            var thinkingClosed = false;
            var blocks = 0;
            var callBlocks = new List<int>(); // the tool_use blocks of calls streamed while generated
            FinishReason? finish = null;
            await foreach (var item in streams.ReadAllAsync(cancellationToken))
            {
                if (item.Error is not null || item.Delta?.FinishReason == FinishReason.Cancelled)
                {
                    GenerationResponder.Finished(http, item.Error is null ? "cancelled" : "error", streams.GeneratedTokens);
                    var error = GenerationResponder.EngineFailure(item);
                    await Send("error", MessagesJson.Error(error.Status, error.Message), cancellationToken);
                    return;
                }

                var delta = item.Delta!;
                var answerText = Take(delta, text);
                finish = delta.FinishReason ?? finish;
                if (thought is { HasThought: true } && !thinkingClosed)
                {
                    // The thought is the first block; it closes once the answer begins (or at the end).
                    if (thinkingBlock < 0)
                    {
                        thinkingBlock = blocks++;
                        await Send("content_block_start", MessagesJson.ThinkingBlockStart(thinkingBlock), cancellationToken);
                    }

                    if (!omitThought && _thoughtPiece.Length > 0)
                    {
                        await Send("content_block_delta", MessagesJson.ThinkingDelta(thinkingBlock, _thoughtPiece), cancellationToken);
                    }
                }

                var ready = held is null ? answerText : held.Add(answerText, null).Text;
                if (thinkingBlock >= 0 && !thinkingClosed && (ready.Length > 0 || !thought!.Thinking || delta.FinishReason is not null))
                {
                    thinkingClosed = true;
                    await Send("content_block_stop", MessagesJson.BlockStop(thinkingBlock), cancellationToken);
                }

                if (ready.Length > 0)
                {
                    if (block < 0)
                    {
                        block = blocks++;
                        await Send("content_block_start", MessagesJson.TextBlockStart(block), cancellationToken);
                    }

                    await Send("content_block_delta", MessagesJson.TextDelta(block, ready), cancellationToken);
                }

                foreach (var call in held?.CallDeltas() ?? [])
                {
                    await SendCallDeltaAsync(call, callBlocks, () => blocks++, cancellationToken);
                }
            }

            // Every token is generated: a timeout now does not undo a whole answer (the deadline still bounds the writes).
            cancellationToken = CancellationToken.None;
            var (_, calls) = Read(text.ToString());
            var callsComplete = calls.Count > 0;
            if (held is { Incremental: true })
            {
                var (remaining, streamed, complete) = held.Finish(new ParsedOutput(null, calls));
                foreach (var call in remaining)
                {
                    await SendCallDeltaAsync(call, callBlocks, () => blocks++, cancellationToken);
                }

                if (streamed.Count > 0)
                {
                    await Send("content_block_stop", MessagesJson.BlockStop(callBlocks[^1]), cancellationToken);
                    calls = streamed;
                    callsComplete = complete;
                }
            }

            if (held?.Rest(calls.Count > 0).Text is { Length: > 0 } rest)
            {
                if (block < 0)
                {
                    block = blocks++;
                    await Send("content_block_start", MessagesJson.TextBlockStart(block), cancellationToken);
                }

                await Send("content_block_delta", MessagesJson.TextDelta(block, rest), cancellationToken);
            }

            if (block >= 0)
            {
                await Send("content_block_stop", MessagesJson.BlockStop(block), cancellationToken);
            }

            foreach (var call in calls.Skip(callBlocks.Count))
            {
                var index = blocks++;
                await Send("content_block_start", MessagesJson.ToolUseBlockStart(index, call), cancellationToken);
                foreach (var piece in ToolCallStream.Pieces(call.Arguments))
                {
                    await Send("content_block_delta", MessagesJson.InputJsonDelta(index, piece), cancellationToken);
                }

                await Send("content_block_stop", MessagesJson.BlockStop(index), cancellationToken);
            }

            var stop = StopReason(finish, callsComplete ? calls : [], _stopString);
            GenerationResponder.Finished(http, AuditReason(stop), OutputTokens);
            Whole = true;
            RequestAudit.Of(http).Tools = settings.Tools?.AuditDetail(calls);
            await Send("message_delta", MessagesJson.MessageDelta(stop, calls.Count > 0 ? null : _stopString, inputTokens, OutputTokens, CachedTokens), cancellationToken);
            await Send("message_stop", MessagesJson.MessageStop(), cancellationToken);
        }

        /// <summary>
        /// A forced call streamed while generated: a tool_use block once its name is complete (closing the call before
        /// it: blocks follow one another), then its input as it is generated.
        /// </summary>
        private async Task SendCallDeltaAsync(CallDelta call, List<int> callBlocks, Func<int> nextBlock, CancellationToken cancellationToken)
        {
            if (call.Opening is { } opening)
            {
                if (callBlocks.Count > 0)
                {
                    await Send("content_block_stop", MessagesJson.BlockStop(callBlocks[^1]), cancellationToken);
                }

                callBlocks.Add(nextBlock());
                await Send("content_block_start", MessagesJson.ToolUseBlockStart(callBlocks[^1], opening), cancellationToken);
            }

            if (call.Arguments.Length > 0)
            {
                await Send("content_block_delta", MessagesJson.InputJsonDelta(callBlocks[call.CallIndex], call.Arguments), cancellationToken);
            }
        }

        /// <summary>The last delta's thought (streamed as a thinking block).</summary>
        private string _thoughtPiece = string.Empty;

        /// <summary>Takes a delta: returns its answer text (all of it unless the model thinks), keeps its thought piece apart.</summary>
        private string Take(GenerationDelta delta, StringBuilder text)
        {
            var answer = delta.Text;
            if (thought is not null)
            {
                (_thoughtPiece, answer) = thought.Add(delta);
            }

            text.Append(answer);
            RequestAudit.Of(http).AppendCompletion(0, delta.Text);
            GenerationResponder.FirstText(http, delta);
            if (delta.FinishReason is not null)
            {
                OutputTokens = delta.Usage?.CompletionTokens ?? OutputTokens;
                CachedTokens = delta.Usage?.CachedPromptTokens ?? 0;
                _stopString = delta.StopString;
            }

            return answer;
        }

        private (string? Text, IReadOnlyList<ToolCall> Calls) Read(string text)
        {
            if (settings.Tools is not { Active: true } tools)
            {
                return (text, []);
            }

            var parsed = tools.Read(text, model.ToolCallFormat, "toolu_");
            return parsed.Calls.Count == 0 ? (text, []) : (parsed.Content, parsed.Calls);
        }

        /// <summary>The audit log and metrics say it as they do for chat completions.</summary>
        private static string AuditReason(string stopReason) => stopReason switch
        {
            "tool_use" => "tool_calls",
            "max_tokens" => "length",
            "refusal" => "content_filter",
            _ => "stop",
        };

        private static string StopReason(FinishReason? finish, IReadOnlyList<ToolCall> calls, string? stopString) =>
            finish == FinishReason.ContentFilter ? "refusal" : calls.Count > 0 ? "tool_use" : finish == FinishReason.Length ? "max_tokens" : stopString is not null ? "stop_sequence" : "end_turn";

        /// <summary>Writes one frame; the token as in <see cref="RequestDeadline.SendFrameAsync"/>.</summary>
        private Task Send(string type, byte[] data, CancellationToken check) =>
            RequestDeadline.SendFrameAsync(http.Response, check, MessagesJson.Frame(type, data));
    }
}
