using System.Text;
using Appliance.Api.Audit;
using Appliance.Api.Models;
using Appliance.Api.OpenAi;
using Appliance.Engine.Requests;
using Appliance.Prompting;
using Appliance.Prompting.Jinja;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace Appliance.Api.Responses;

/// <summary>
/// POST /v1/responses, stateless: OpenAI's Responses API for Codex-style clients, over the same prompt, constraint,
/// engine, identity, quotas, fair scheduling and audit as chat completions. Nothing is stored.
/// </summary>
internal static class ResponsesApi
{
    public static async Task HandleAsync(HttpContext http, IModelCatalog catalog, IModelAccess access, IAccessRecorder recorder, IContentRecording content, Guardrails.GuardrailSet guardrails, IOptions<ApiLimits> options, TimeProvider time)
    {
        var limits = options.Value;
        using var fields = await JsonFields.ReadAsync(http.Request, limits.MaxBodyBytes, http.RequestAborted);
        var request = fields.Parse(f => ResponsesRequest.Read(f, limits));
        var model = ModelResolution.Resolve(catalog, access, http, request.Settings.Model);
        var guard = guardrails.For(http, model.Id, model.Aliases);
        // The instructions are the first turn as the model reads them; the response echoes them as screened there.
        request = request with
        {
            Messages = guard.Screen(request.Messages, "input"),
            Instructions = request.Instructions is null ? null : guard.Screen(request.Instructions, "instructions", record: false),
        };
        var (answerConstraint, thinking, prompt) = Prompt(model, request);
        // Without max_output_tokens (Codex sends none) the answer may use what the context leaves, not a chat default.
        var maxTokens = ModelResolution.MaxTokens(model, request.Settings.MaxTokens ?? Math.Min(limits.MaxTokens, Math.Max(model.ContextLength - prompt.Count, 1)), prompt.Count, limits.MaxTokens, request.Settings.MaxTokensIsCeiling, input: "input");
        var settings = request.Settings with { Constraint = thinking.Constraint(model, answerConstraint, maxTokens, request.Reasoning.Budget), Tools = request.Tools, OutputScreen = guard.OutputScreen };
        var audit = RequestAudit.Of(http);
        audit.PromptTokens = prompt.Count;
        audit.Tools = request.Tools.AuditDetail(called: null);
        if (content.Records(model.Id))
        {
            audit.RecordConversation(request.Messages);
        }

        var id = "resp_" + Guid.NewGuid().ToString("N");
        var tenant = Tenancy.Of(http);
        var accepted = await ModelResolution.AcceptAsync(recorder, http,
            () => ChoiceStreams.Submit(model, [new ChoiceInput(0, prompt)], settings, maxTokens, id, tenant, limits.RequestTimeout, Batches.BatchRequest.Is(http)));
        using var quota = accepted.Quota;
        await using var streams = accepted.Streams; // ends before the quota's charge is taken
        audit.FinishReason = "cancelled";
        using var deadline = new RequestDeadline(http, limits);
        var answer = new Answer(http, model, settings, new ResponsesJson(id, request.Settings.Model, time.GetUtcNow().ToUnixTimeSeconds(), request), prompt.Count, thinking.Reader());
        await deadline.RunAsync(token => answer.RunAsync(streams, token), () => answer.Whole, streams, () => TellTimeoutAsync(http, answer));
    }

    /// <summary>
    /// POST /v1/responses/input_tokens: the input tokens a response to this body would be charged (OpenAI's count, with
    /// the same body as a response; the model may be left out where one is served to the caller). Nothing runs.
    /// </summary>
    public static async Task<IResult> CountInputTokensAsync(HttpContext http, IModelCatalog catalog, IModelAccess access, IOptions<ApiLimits> options)
    {
        var limits = options.Value;
        using var fields = await JsonFields.ReadAsync(http.Request, limits.MaxBodyBytes, http.RequestAborted);
        var model = TokenizerApi.Resolve(http, catalog, access, fields.Parse(f => f.OptionalString("model")));
        using var body = TokenizerApi.WithModel(fields, model.Id, []);
        var (_, _, prompt) = Prompt(model, body.Parse(f => ResponsesRequest.Read(f, limits)));
        RequestAudit.Of(http).RecordTokenizerOnly($"counted {prompt.Count} input tokens");
        return Results.Json(new { @object = "response.input_tokens", input_tokens = prompt.Count });
    }

    /// <summary>The input as the model reads it: the answer's constraint, the thinking plan, the tokens.</summary>
    private static (Engine.Sampling.ITokenConstraint? Answer, ThinkingPlan Thinking, IReadOnlyList<int> Tokens) Prompt(ServedModel model, ResponsesRequest request)
    {
        var answer = request.Tools.ConstraintFor(model, request.Format, "text.format") ?? request.Format.ConstraintFor(model);
        var thinking = ThinkingPlan.For(model, Render(model, request), request.Reasoning, answer is not null);
        return (answer, thinking, model.Engine.Tokenizer.Encode(thinking.Prompt));
    }

    /// <summary>The timeout as an error answer, or as the stream's error and response.failed events once it has begun.</summary>
    private static Task TellTimeoutAsync(HttpContext http, Answer answer) =>
        http.Response.HasStarted
            ? answer.SendErrorAsync("timeout", GenerationResponder.TimeoutMessage)
            : OpenAiError.Unavailable(GenerationResponder.TimeoutMessage, "timeout").WriteAsync(http);

    private static string Render(ServedModel model, ResponsesRequest request)
    {
        try
        {
            return ToolPrompt.Render(model.ChatTemplate, request.Messages, request.Tools.Choice == "none" ? null : request.Tools.Tools, format: model.ToolCallFormat, reasoning: request.Reasoning.Switch);
        }
        catch (ChatTemplateRejectedException rejected)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid(rejected.Message, "input", "invalid_conversation"));
        }
        catch (ChatTemplateException failure)
        {
            throw TemplateFailure.Of(failure, model, request.Messages, "input");
        }
    }

    /// <summary>One response being generated: returned whole, or streamed as the Responses API's events.</summary>
    private sealed class Answer(HttpContext http, ServedModel model, GenerationSettings settings, ResponsesJson json, int inputTokens, ThoughtReader? thought)
    {
        private readonly string _messageId = "msg_" + Guid.NewGuid().ToString("N");
        private readonly string _reasoningId = "rs_" + Guid.NewGuid().ToString("N");

        /// <summary>The output index of the first item after the thought: 1 once a reasoning item leads the output.</summary>
        private int _first;
        private bool _thoughtDone;

        public int OutputTokens { get; private set; }

        /// <summary>Whether the answer is whole and audited so: a client leaving or the deadline during its last frames does not undo that.</summary>
        public bool Whole { get; private set; }

        public async Task RunAsync(ChoiceStreams streams, CancellationToken cancellationToken)
        {
            var text = new StringBuilder();
            var held = settings.Stream && settings.Tools is { Active: true } tools ? new ToolCallStream(model.ToolCallFormat, incremental: tools.Forced) : null;
            var opened = new List<StreamedCall>(); // the function_call items streamed while generated, by call index
            var messageOpen = false;
            var sent = new StringBuilder();
            FinishReason? finish = null;
            if (settings.Stream)
            {
                http.Response.ContentType = "text/event-stream";
                http.Response.Headers.CacheControl = "no-cache";
                http.Response.Headers["X-Accel-Buffering"] = "no";
                await Send("response.created", json.ResponseEvent("response.created", "in_progress", null, 0, 0, null), cancellationToken);
                await Send("response.in_progress", json.ResponseEvent("response.in_progress", "in_progress", null, 0, 0, null), cancellationToken);
            }

            await foreach (var item in streams.ReadAllAsync(cancellationToken))
            {
                if (item.Error is not null || item.Delta?.FinishReason == FinishReason.Cancelled)
                {
                    GenerationResponder.Finished(http, item.Error is null ? "cancelled" : "error", streams.GeneratedTokens);
                    var error = GenerationResponder.EngineFailure(item);
                    if (settings.Stream)
                    {
                        await SendErrorAsync(error.Code ?? "server_error", error.Message);
                    }
                    else
                    {
                        await error.WriteAsync(http);
                    }

                    return;
                }

                var delta = item.Delta!;
                var (thoughtPiece, answerText) = thought?.Add(delta) ?? (string.Empty, delta.Text);
                text.Append(answerText);
                RequestAudit.Of(http).AppendCompletion(0, delta.Text);
                GenerationResponder.FirstText(http, delta);
                finish = delta.FinishReason ?? finish;
                if (delta.FinishReason is not null)
                {
                    OutputTokens = delta.Usage?.CompletionTokens ?? OutputTokens;
                    json.CachedInputTokens = delta.Usage?.CachedPromptTokens ?? 0;
                    json.ReasoningTokens = thought?.Tokens ?? 0;
                }

                if (settings.Stream && thought is not null)
                {
                    await StreamThoughtAsync(thoughtPiece, answerText.Length > 0 || delta.FinishReason is not null, cancellationToken);
                }

                var ready = !settings.Stream ? string.Empty : held is null ? answerText : held.Add(answerText, null).Text;
                if (ready.Length > 0)
                {
                    messageOpen = await OpenMessageAsync(messageOpen, cancellationToken);
                    sent.Append(ready);
                    await Send("response.output_text.delta", json.Event("response.output_text.delta", w =>
                    {
                        w.WriteString("item_id", _messageId);
                        w.WriteNumber("output_index", _first);
                        w.WriteNumber("content_index", 0);
                        w.WriteString("delta", ready);
                    }), cancellationToken);
                }

                foreach (var call in held?.CallDeltas() ?? [])
                {
                    await SendCallDeltaAsync(call, opened, cancellationToken);
                }
            }

            // Every token is generated: a timeout now does not undo a whole answer (the deadline still bounds the writes).
            cancellationToken = CancellationToken.None;
            var calls = settings.Tools is { Active: true } offered ? offered.Read(text.ToString(), model.ToolCallFormat) : new ParsedOutput(text.ToString(), []);
            var callsComplete = calls.Calls.Count > 0;
            if (held is { Incremental: true })
            {
                var (remaining, streamed, complete) = held.Finish(calls);
                foreach (var call in remaining)
                {
                    await SendCallDeltaAsync(call, opened, cancellationToken);
                }

                calls = streamed.Count > 0 ? new ParsedOutput(null, streamed) : calls;
                callsComplete = complete;
            }

            var output = new List<OutputItem>();
            if (thought?.Thought is { } thoughtText)
            {
                output.Add(new OutputItem(_reasoningId, thoughtText, null, Thought: true));
            }

            var messageText = calls.Calls.Count > 0 ? calls.Content : text.ToString();
            if (!string.IsNullOrEmpty(messageText) || calls.Calls.Count == 0 || messageOpen)
            {
                output.Add(new OutputItem(_messageId, messageOpen ? sent.ToString() + (held?.Rest(calls.Calls.Count > 0).Text ?? string.Empty) : messageText ?? string.Empty, null));
            }

            output.AddRange(calls.Calls.Select((call, i) => new OutputItem(
                i < opened.Count ? opened[i].ItemId : ItemId(call.Name), null, call, Cut: !callsComplete && i == calls.Calls.Count - 1, Freeform: Freeform(call.Name))));
            var incomplete = finish == FinishReason.ContentFilter ? "content_filter" : !callsComplete && finish == FinishReason.Length ? "max_output_tokens" : null;
            var status = incomplete is null ? "completed" : "incomplete";
            GenerationResponder.Finished(http, finish == FinishReason.ContentFilter ? "content_filter" : callsComplete ? "tool_calls" : finish == FinishReason.Length ? "length" : "stop", OutputTokens);
            Whole = true;
            RequestAudit.Of(http).Tools = settings.Tools?.AuditDetail(calls.Calls);
            if (!settings.Stream)
            {
                http.Response.ContentType = "application/json";
                await http.Response.Body.WriteAsync(json.Response(status, output, inputTokens, OutputTokens, incomplete), http.RequestAborted);
                return;
            }

            await FinishStreamAsync(output, messageOpen, sent.ToString(), opened, status, incomplete, cancellationToken);
        }

        /// <summary>
        /// A forced call streamed while generated: its item once its name is complete (the call before it, whole by
        /// then, is done first: items follow one another), then its arguments.
        /// </summary>
        private async Task SendCallDeltaAsync(CallDelta call, List<StreamedCall> opened, CancellationToken cancellationToken)
        {
            if (call.Opening is { } opening)
            {
                if (opened.Count > 0 && opened[^1] is { Done: false } previous)
                {
                    var whole = new OutputItem(previous.ItemId, null, previous.Opening with { Arguments = previous.Arguments.ToString() }, Freeform: previous.Input is not null);
                    await SendCallDoneAsync(whole, _first + opened.Count - 1, previous.SentInput.ToString(), cancellationToken);
                    previous.Done = true;
                }

                opened.Add(new StreamedCall(ItemId(opening.Name), opening, Freeform(opening.Name) ? new FreeformInput.Stream() : null));
                await Send("response.output_item.added", json.Event("response.output_item.added", w =>
                {
                    w.WriteNumber("output_index", _first + call.CallIndex);
                    w.WritePropertyName("item");
                    ResponsesJson.WriteItem(w, new OutputItem(opened[call.CallIndex].ItemId, null, opening, Freeform: opened[call.CallIndex].Input is not null), done: false);
                }), cancellationToken);
            }

            if (call.Arguments.Length > 0)
            {
                var streamed = opened[call.CallIndex];
                streamed.Arguments.Append(call.Arguments);
                if (streamed.Input is { } input)
                {
                    // A custom tool's input streams as text, read out of the arguments as they come.
                    var text = input.Add(call.Arguments);
                    streamed.SentInput.Append(text);
                    await SendInputDeltaAsync(streamed.ItemId, _first + call.CallIndex, text, cancellationToken);
                    return;
                }

                await Send("response.function_call_arguments.delta", json.Event("response.function_call_arguments.delta", w =>
                {
                    w.WriteString("item_id", streamed.ItemId);
                    w.WriteNumber("output_index", _first + call.CallIndex);
                    w.WriteString("delta", call.Arguments);
                }), cancellationToken);
            }
        }

        private async Task SendInputDeltaAsync(string itemId, int outputIndex, string text, CancellationToken cancellationToken)
        {
            if (text.Length == 0)
            {
                return;
            }

            await Send("response.custom_tool_call_input.delta", json.Event("response.custom_tool_call_input.delta", w =>
            {
                w.WriteString("item_id", itemId);
                w.WriteNumber("output_index", outputIndex);
                w.WriteString("delta", text);
            }), cancellationToken);
        }

        /// <summary>A call's end: the rest of a custom tool's input not streamed yet (<paramref name="sentInput"/> went out), then its done events.</summary>
        private async Task SendCallDoneAsync(OutputItem item, int outputIndex, string sentInput, CancellationToken cancellationToken)
        {
            if (item.Freeform)
            {
                var input = FreeformInput.Of(item.Call!.Arguments);
                foreach (var piece in input.StartsWith(sentInput, StringComparison.Ordinal) ? ToolCallStream.Pieces(input[sentInput.Length..]) : [])
                {
                    await SendInputDeltaAsync(item.Id, outputIndex, piece, cancellationToken);
                }

                await Send("response.custom_tool_call_input.done", json.Event("response.custom_tool_call_input.done", w =>
                {
                    w.WriteString("item_id", item.Id);
                    w.WriteNumber("output_index", outputIndex);
                    w.WriteString("input", input);
                }), cancellationToken);
            }
            else
            {
                await Send("response.function_call_arguments.done", json.Event("response.function_call_arguments.done", w =>
                {
                    w.WriteString("item_id", item.Id);
                    w.WriteNumber("output_index", outputIndex);
                    w.WriteString("arguments", item.Call!.Arguments);
                }), cancellationToken);
            }

            await Send("response.output_item.done", json.Event("response.output_item.done", w =>
            {
                w.WriteNumber("output_index", outputIndex);
                w.WritePropertyName("item");
                ResponsesJson.WriteItem(w, item, done: true);
            }), cancellationToken);
        }

        /// <summary>Whether the tool named is a custom tool (text input) rather than a function.</summary>
        private bool Freeform(string name) => settings.Tools?.Tools.Any(tool => tool.Name == name && tool.Freeform) == true;

        private string ItemId(string toolName) => (Freeform(toolName) ? "ctc_" : "fc_") + Guid.NewGuid().ToString("N");

        /// <summary>
        /// A call item streamed while generated: its ids, its opening, the arguments sent, whether it is done; for a
        /// custom tool, the reader of its input and the input sent.
        /// </summary>
        private sealed class StreamedCall(string itemId, ToolCall opening, FreeformInput.Stream? input)
        {
            public string ItemId => itemId;

            public ToolCall Opening => opening;

            public StringBuilder Arguments { get; } = new();

            public FreeformInput.Stream? Input => input;

            public StringBuilder SentInput { get; } = new();

            public bool Done { get; set; }
        }

        /// <summary>An error event, then response.failed: clients wait for a terminal event.</summary>
        public async Task SendErrorAsync(string code, string message)
        {
            await Send("error", json.Event("error", w =>
            {
                w.WriteString("code", code);
                w.WriteString("message", message);
                w.WriteNull("param");
            }), CancellationToken.None);
            await Send("response.failed", json.ResponseEvent("response.failed", "failed", [], inputTokens, OutputTokens, null, (code, message)), CancellationToken.None);
        }

        /// <summary>
        /// The thought as a reasoning item leading the output: added once the output has one, its text streamed, and
        /// done once the answer begins (items follow one another).
        /// </summary>
        private async Task StreamThoughtAsync(string piece, bool answerBegun, CancellationToken cancellationToken)
        {
            if (_thoughtDone || thought is not { HasThought: true })
            {
                return;
            }

            if (_first == 0)
            {
                _first = 1;
                await Send("response.output_item.added", json.Event("response.output_item.added", w =>
                {
                    w.WriteNumber("output_index", 0);
                    w.WritePropertyName("item");
                    ResponsesJson.WriteItem(w, new OutputItem(_reasoningId, null, null, Thought: true), done: false);
                }), cancellationToken);
                await SendReasoningPartAsync("response.content_part.added", string.Empty, cancellationToken);
            }

            if (piece.Length > 0)
            {
                await SendReasoningEventAsync("response.reasoning_text.delta", w => w.WriteString("delta", piece), cancellationToken);
            }

            if (!answerBegun && thought.Thinking)
            {
                return;
            }

            _thoughtDone = true;
            var whole = thought.Thought ?? string.Empty;
            await SendReasoningEventAsync("response.reasoning_text.done", w => w.WriteString("text", whole), cancellationToken);
            await SendReasoningPartAsync("response.content_part.done", whole, cancellationToken);
            await Send("response.output_item.done", json.Event("response.output_item.done", w =>
            {
                w.WriteNumber("output_index", 0);
                w.WritePropertyName("item");
                ResponsesJson.WriteItem(w, new OutputItem(_reasoningId, whole, null, Thought: true), done: true);
            }), cancellationToken);
        }

        /// <summary>The reasoning item's one content part, opened empty and closed with the whole thought (as a message's text part).</summary>
        private Task SendReasoningPartAsync(string type, string text, CancellationToken cancellationToken) =>
            SendReasoningEventAsync(type, w =>
            {
                w.WritePropertyName("part");
                ResponsesJson.WriteReasoningPart(w, text);
            }, cancellationToken);

        /// <summary>An event of the reasoning item's text (always the first item and its only part), then its own fields.</summary>
        private Task SendReasoningEventAsync(string type, Action<System.Text.Json.Utf8JsonWriter> fields, CancellationToken cancellationToken) =>
            Send(type, json.Event(type, w =>
            {
                w.WriteString("item_id", _reasoningId);
                w.WriteNumber("output_index", 0);
                w.WriteNumber("content_index", 0);
                fields(w);
            }), cancellationToken);

        private async Task<bool> OpenMessageAsync(bool open, CancellationToken cancellationToken)
        {
            if (open)
            {
                return true;
            }

            await Send("response.output_item.added", json.Event("response.output_item.added", w =>
            {
                w.WriteNumber("output_index", _first);
                w.WritePropertyName("item");
                ResponsesJson.WriteItem(w, new OutputItem(_messageId, null, null), done: false);
            }), cancellationToken);
            await Send("response.content_part.added", json.Event("response.content_part.added", w =>
            {
                w.WriteString("item_id", _messageId);
                w.WriteNumber("output_index", _first);
                w.WriteNumber("content_index", 0);
                w.WritePropertyName("part");
                ResponsesJson.WriteTextPart(w, string.Empty);
            }), cancellationToken);
            return true;
        }

        private async Task FinishStreamAsync(List<OutputItem> output, bool messageOpen, string sent, List<StreamedCall> streamedCalls, string status, string? incomplete, CancellationToken cancellationToken)
        {
            for (var index = 0; index < output.Count; index++)
            {
                var item = output[index];
                var outputIndex = index;
                if (item.Thought)
                {
                    await StreamThoughtAsync(string.Empty, answerBegun: true, cancellationToken); // a thought not streamed yet (or not closed) is now
                    continue;
                }

                if (item.Call is null)
                {
                    var rest = item.Text is { } full && full.Length > sent.Length ? full[sent.Length..] : string.Empty;
                    await OpenMessageAsync(messageOpen, cancellationToken);
                    if (rest.Length > 0)
                    {
                        await Send("response.output_text.delta", json.Event("response.output_text.delta", w =>
                        {
                            w.WriteString("item_id", item.Id);
                            w.WriteNumber("output_index", outputIndex);
                            w.WriteNumber("content_index", 0);
                            w.WriteString("delta", rest);
                        }), cancellationToken);
                    }

                    await Send("response.output_text.done", json.Event("response.output_text.done", w =>
                    {
                        w.WriteString("item_id", item.Id);
                        w.WriteNumber("output_index", outputIndex);
                        w.WriteNumber("content_index", 0);
                        w.WriteString("text", item.Text);
                    }), cancellationToken);
                    await Send("response.content_part.done", json.Event("response.content_part.done", w =>
                    {
                        w.WriteString("item_id", item.Id);
                        w.WriteNumber("output_index", outputIndex);
                        w.WriteNumber("content_index", 0);
                        w.WritePropertyName("part");
                        ResponsesJson.WriteTextPart(w, item.Text ?? string.Empty);
                    }), cancellationToken);
                }
                else
                {
                    // A call streamed while generated was added and its arguments sent; one before the last is done too.
                    var streamed = streamedCalls.FirstOrDefault(call => call.ItemId == item.Id);
                    if (streamed is { Done: true })
                    {
                        continue;
                    }

                    if (streamed is null)
                    {
                        await Send("response.output_item.added", json.Event("response.output_item.added", w =>
                        {
                            w.WriteNumber("output_index", outputIndex);
                            w.WritePropertyName("item");
                            ResponsesJson.WriteItem(w, item, done: false);
                        }), cancellationToken);
                        foreach (var piece in item.Freeform ? [] : ToolCallStream.Pieces(item.Call.Arguments))
                        {
                            await Send("response.function_call_arguments.delta", json.Event("response.function_call_arguments.delta", w =>
                            {
                                w.WriteString("item_id", item.Id);
                                w.WriteNumber("output_index", outputIndex);
                                w.WriteString("delta", piece);
                            }), cancellationToken);
                        }
                    }

                    await SendCallDoneAsync(item, outputIndex, streamed?.SentInput.ToString() ?? string.Empty, cancellationToken);
                    continue;
                }

                await Send("response.output_item.done", json.Event("response.output_item.done", w =>
                {
                    w.WriteNumber("output_index", outputIndex);
                    w.WritePropertyName("item");
                    ResponsesJson.WriteItem(w, item, done: true);
                }), cancellationToken);
            }

            var final = incomplete is null ? "response.completed" : "response.incomplete";
            await Send(final, json.ResponseEvent(final, status, output, inputTokens, OutputTokens, incomplete), cancellationToken);
        }

        /// <summary>Writes one frame; the token as in <see cref="RequestDeadline.SendFrameAsync"/>.</summary>
        private Task Send(string type, byte[] data, CancellationToken check) =>
            RequestDeadline.SendFrameAsync(http.Response, check, ResponsesJson.Frame(type, data));
    }
}
