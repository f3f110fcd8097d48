using System.Text;
using Appliance.Api.Models;
using Appliance.Engine.Requests;
using Microsoft.AspNetCore.Http;

namespace Appliance.Api.OpenAi;

/// <summary>Runs a request's choices on the engine and answers with one JSON object or a stream of server-sent events.</summary>
internal static class GenerationResponder
{
    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] EventEnd = "\n\n"u8.ToArray();
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();

    public static async Task RespondAsync(
        HttpContext http,
        ResponseHeader header,
        ServedModel model,
        GenerationSettings settings,
        IReadOnlyList<ChoiceInput> choices,
        ChoiceStreams streams,
        int promptTokens,
        ApiLimits limits,
        ThinkingPlan? thinking = null)
    {
        var audit = Audit.RequestAudit.Of(http);
        audit.FinishReason = "cancelled"; // until a choice says otherwise: a client that leaves or a timeout ends it so
        using var deadline = new RequestDeadline(http, limits);
        if (settings.Stream)
        {
            await StreamAsync(http, header, model, settings, choices, streams, promptTokens, Thoughts(choices, thinking), deadline);
        }
        else
        {
            await CollectAsync(http, header, model, settings, choices, streams, promptTokens, Thoughts(choices, thinking), deadline);
        }
    }

    /// <summary>Each choice's reader of its thought, for a reasoning model's chat answer; null otherwise.</summary>
    private static Dictionary<int, ThoughtReader>? Thoughts(IReadOnlyList<ChoiceInput> choices, ThinkingPlan? thinking) =>
        thinking?.Reader() is null ? null : choices.ToDictionary(c => c.Index, _ => thinking.Reader()!);

    private static int ThoughtTokens(Dictionary<int, ThoughtReader>? thoughts) => thoughts?.Values.Sum(t => t.Tokens) ?? 0;

    private static async Task CollectAsync(HttpContext http, ResponseHeader header, ServedModel model, GenerationSettings settings, IReadOnlyList<ChoiceInput> choices, ChoiceStreams streams, int promptTokens, Dictionary<int, ThoughtReader>? thoughts, RequestDeadline deadline)
    {
        var cancellationToken = deadline.Token;
        var text = choices.ToDictionary(c => c.Index, _ => new StringBuilder());
        var logprobs = choices.ToDictionary(c => c.Index, _ => new List<TokenLogprob>());
        var finish = new Dictionary<int, FinishReason>();
        var completionTokens = 0;
        int? cachedTokens = null;
        var echo = PromptEcho.For(choices, settings.Logprobs);
        try
        {
            await foreach (var item in streams.ReadAllAsync(cancellationToken))
            {
                if (item.Error is not null || item.Delta?.FinishReason == FinishReason.Cancelled)
                {
                    Failed(http, item, streams.GeneratedTokens);
                    if (item.Error is Appliance.Engine.EngineFailedException restarting)
                    {
                        http.Response.Headers.RetryAfter = restarting.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    }

                    await EngineFailure(item).WriteAsync(http);
                    return;
                }

                var delta = item.Delta!;
                var (deltaText, deltaLogprobs) = echo?.Prepend(item.Index, delta) ?? (delta.Text, delta.Logprobs);
                text[item.Index].Append(thoughts is null ? deltaText : thoughts[item.Index].Add(delta).Content);
                Audit.RequestAudit.Of(http).AppendCompletion(item.Index, delta.Text);
                logprobs[item.Index].AddRange(deltaLogprobs ?? []);
                FirstText(http, delta);
                if (delta.FinishReason is { } reason)
                {
                    finish[item.Index] = reason;
                    completionTokens += delta.Usage?.CompletionTokens ?? 0;
                    cachedTokens = CachedForEvery(cachedTokens, delta.Usage);
                }
            }
        }
        catch (OperationCanceledException) when (deadline.Ended)
        {
            Finished(http, deadline.EndReason, streams.GeneratedTokens); // the tokens count whoever ended it
            if (deadline.TimedOut && !http.RequestAborted.IsCancellationRequested)
            {
                await OpenAiError.Unavailable(TimeoutMessage, "timeout").WriteAsync(http);
            }

            return;
        }

        var results = choices
            .Select(c => Result(settings, model, c.Index, text[c.Index].ToString(), logprobs[c.Index].Count > 0 ? logprobs[c.Index] : null, finish.GetValueOrDefault(c.Index, FinishReason.Length))
                with { Reasoning = thoughts?[c.Index].Thought })
            .ToList();
        Finished(http, string.Join(",", results.Select(r => r.CalledTools && r.Finish != FinishReason.ContentFilter ? "tool_calls" : Wire(r.Finish)).Distinct()), completionTokens);
        if (settings.Tools is { } tools)
        {
            Audit.RequestAudit.Of(http).Tools = tools.AuditDetail(results.SelectMany(r => r.ToolCalls ?? []));
        }
        http.Response.ContentType = "application/json";
        var usage = new GenerationUsage(promptTokens, completionTokens) { CachedPromptTokens = cachedTokens ?? 0, ReasoningTokens = ThoughtTokens(thoughts) };
        await http.Response.Body.WriteAsync(OpenAiJson.Completion(header, results, usage, model.Engine.Tokenizer, settings.Tools), deadline.Writes);
    }

    internal const string TimeoutMessage = "The request took longer than the configured request timeout.";

    /// <summary>The prompt is counted once for all choices: its cached part is what every choice found cached.</summary>
    private static int? CachedForEvery(int? sofar, GenerationUsage? usage) =>
        usage is not { } u ? sofar : Math.Min(sofar ?? int.MaxValue, u.CachedPromptTokens);

    /// <summary>A finished choice, read for tool calls when the request offered tools.</summary>
    private static ChoiceResult Result(GenerationSettings settings, ServedModel model, int index, string text, IReadOnlyList<Engine.Requests.TokenLogprob>? logprobs, FinishReason finish)
    {
        if (settings.Tools is not { Active: true } tools)
        {
            return new ChoiceResult(index, text, logprobs, finish);
        }

        var parsed = tools.Read(text, model.ToolCallFormat);
        return parsed.Calls.Count == 0
            ? new ChoiceResult(index, text, logprobs, finish)
            : new ChoiceResult(index, parsed.Content, logprobs, finish, parsed.Calls);
    }

    private static async Task StreamAsync(HttpContext http, ResponseHeader header, ServedModel model, GenerationSettings settings, IReadOnlyList<ChoiceInput> choices, ChoiceStreams streams, int promptTokens, Dictionary<int, ThoughtReader>? thoughts, RequestDeadline deadline)
    {
        var cancellationToken = deadline.Token;
        var response = http.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        var tokenizer = model.Engine.Tokenizer;
        var completionTokens = 0;
        int? cachedTokens = null;
        var finished = new HashSet<string>();
        var toolStreams = settings.Tools is { Active: true } && header.Kind == ResponseKind.Chat
            ? choices.ToDictionary(c => c.Index, _ => new ToolCallStream(model.ToolCallFormat, incremental: settings.Tools.Forced))
            : null;
        var callDeltas = toolStreams?.ToDictionary(pair => pair.Key, _ => new CustomCallDeltas(settings.Tools!));
        var called = new List<Appliance.Prompting.ToolCall>();
        var echo = PromptEcho.For(choices, settings.Logprobs);
        var textOffsets = choices.ToDictionary(c => c.Index, _ => 0); // a legacy choice's logprobs count text_offset on across chunks
        try
        {
            if (header.Kind == ResponseKind.Chat)
            {
                foreach (var choice in choices)
                {
                    await Event(response, OpenAiJson.Chunk(header, choice.Index, string.Empty, role: true, null, null, settings.IncludeUsage, tokenizer), cancellationToken);
                }
            }
            else
            {
                cancellationToken.ThrowIfCancellationRequested();
                await response.StartAsync(deadline.Writes); // as in Event: a cancelled write aborts the connection
            }

            await foreach (var item in streams.ReadAllAsync(cancellationToken))
            {
                if (item.Error is not null || item.Delta?.FinishReason == FinishReason.Cancelled)
                {
                    Failed(http, item, streams.GeneratedTokens);
                    var error = EngineFailure(item);
                    await Event(response, OpenAiJson.StreamError(error.Message, error.Type, error.Code ?? "server_error"), cancellationToken);
                    return;
                }

                var delta = item.Delta!;
                FirstText(http, delta);
                Audit.RequestAudit.Of(http).AppendCompletion(item.Index, delta.Text);
                var (answer, deltaLogprobs) = echo?.Prepend(item.Index, delta) ?? (delta.Text, delta.Logprobs);
                if (thoughts is not null)
                {
                    string reasoning;
                    (reasoning, answer) = thoughts[item.Index].Add(delta);
                    if (reasoning.Length > 0)
                    {
                        // A token's log probability goes out with the text it wrote: here, when it wrote only thought.
                        var thoughtLogprobs = answer.Length == 0 ? deltaLogprobs : null;
                        deltaLogprobs = answer.Length == 0 ? null : deltaLogprobs;
                        await Event(response, OpenAiJson.Chunk(header, item.Index, null, role: false, thoughtLogprobs, null, settings.IncludeUsage, tokenizer, reasoning: reasoning), cancellationToken);
                    }
                }

                var (text, logprobs) = toolStreams is null ? (answer, deltaLogprobs) : toolStreams[item.Index].Add(answer, deltaLogprobs);
                if (text.Length > 0 || logprobs is not null)
                {
                    await Event(response, OpenAiJson.Chunk(header, item.Index, text, role: false, logprobs, null, settings.IncludeUsage, tokenizer, textOffset: textOffsets[item.Index]), cancellationToken);
                    textOffsets[item.Index] += OpenAiJson.TokensLength(tokenizer, logprobs);
                }

                foreach (var call in toolStreams?[item.Index].CallDeltas() ?? [])
                {
                    await CallChunkAsync(response, header, settings, item.Index, callDeltas![item.Index], call, cancellationToken);
                }

                if (delta.FinishReason is { } reason)
                {
                    completionTokens += delta.Usage?.CompletionTokens ?? 0;
                    cachedTokens = CachedForEvery(cachedTokens, delta.Usage);
                    var calledTools = toolStreams is not null && await SendToolCallsAsync(response, header, settings, model, item.Index, toolStreams[item.Index], callDeltas![item.Index], called, cancellationToken);
                    finished.Add(calledTools && reason != FinishReason.ContentFilter ? "tool_calls" : Wire(reason));
                    var finalText = header.Kind == ResponseKind.Chat ? null : string.Empty;
                    await Event(response, OpenAiJson.Chunk(header, item.Index, finalText, role: false, null, reason, settings.IncludeUsage, tokenizer, calledTools), cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (deadline.Ended)
        {
            // The client went away or the request timed out: disposing the streams cancels the generation.
            Finished(http, deadline.EndReason, streams.GeneratedTokens);
            if (deadline.TimedOut)
            {
                // Said in the stream, as an engine failure is: a stream that just stopped would read as a whole answer.
                var error = OpenAiError.Unavailable(TimeoutMessage, "timeout");
                try
                {
                    await Event(response, OpenAiJson.StreamError(error.Message, error.Type, error.Code ?? "timeout"), CancellationToken.None);
                }
                catch (Exception exception) when (exception is IOException or OperationCanceledException)
                {
                    // The client left, or stopped reading and the deadline closed the connection: nobody to tell.
                }
            }

            return;
        }

        Finished(http, string.Join(",", finished), completionTokens);
        if (settings.Tools is { } offered)
        {
            Audit.RequestAudit.Of(http).Tools = offered.AuditDetail(called);
        }

        if (settings.IncludeUsage)
        {
            await Event(response, OpenAiJson.UsageChunk(header, new GenerationUsage(promptTokens, completionTokens) { CachedPromptTokens = cachedTokens ?? 0, ReasoningTokens = ThoughtTokens(thoughts) }), CancellationToken.None);
        }

        // Every choice has finished: a timeout now does not undo a whole answer.
        await RequestDeadline.SendFrameAsync(response, CancellationToken.None, Done);
    }

    /// <summary>
    /// At a choice's end: its calls as tool-call deltas (id, type and name first, then the arguments in pieces), or the
    /// held text when it made none. Returns whether it called tools: whole calls; forced calls cut short (max_tokens)
    /// return false, so that the choice ends with the reason that cut them.
    /// </summary>
    private static async Task<bool> SendToolCallsAsync(HttpResponse response, ResponseHeader header, GenerationSettings settings, ServedModel model, int index, ToolCallStream stream, CustomCallDeltas deltas, List<Appliance.Prompting.ToolCall> called, CancellationToken cancellationToken)
    {
        var parsed = settings.Tools!.Read(stream.Text, model.ToolCallFormat);
        if (stream.Incremental)
        {
            var (remaining, streamedCalls, complete) = stream.Finish(parsed);
            foreach (var call in remaining)
            {
                await CallChunkAsync(response, header, settings, index, deltas, call, cancellationToken);
            }

            for (var i = 0; i < streamedCalls.Count; i++)
            {
                if (deltas.Rest(i, streamedCalls[i].Arguments) is { } unsent)
                {
                    await Event(response, OpenAiJson.ToolCallChunk(header, index, i, null, unsent, settings.IncludeUsage, custom: true), cancellationToken);
                }
            }

            called.AddRange(streamedCalls);
            if (streamedCalls.Count > 0)
            {
                if (stream.Rest(calledTools: true).Logprobs is { } heldLogprobs)
                {
                    await Event(response, OpenAiJson.Chunk(header, index, string.Empty, role: false, heldLogprobs, null, settings.IncludeUsage, model.Engine.Tokenizer), cancellationToken);
                }

                return complete; // calls cut short (max_tokens) end with the finish reason that cut them
            }
        }

        var (rest, logprobs) = stream.Rest(parsed.Calls.Count > 0);
        if (rest is not null || logprobs is not null)
        {
            await Event(response, OpenAiJson.Chunk(header, index, rest ?? string.Empty, role: false, logprobs, null, settings.IncludeUsage, model.Engine.Tokenizer), cancellationToken);
        }

        for (var i = 0; i < parsed.Calls.Count; i++)
        {
            var call = parsed.Calls[i];
            var custom = settings.Tools.IsCustom(call.Name);
            await Event(response, OpenAiJson.ToolCallChunk(header, index, i, call, string.Empty, settings.IncludeUsage, custom), cancellationToken);
            foreach (var piece in ToolCallStream.Pieces(custom ? FreeformInput.Of(call.Arguments) : call.Arguments))
            {
                await Event(response, OpenAiJson.ToolCallChunk(header, index, i, null, piece, settings.IncludeUsage, custom), cancellationToken);
            }
        }

        called.AddRange(parsed.Calls);
        return parsed.Calls.Count > 0;
    }

    /// <summary>One call delta of a forced answer as a chunk: a custom tool's input decoded from the arguments as they come.</summary>
    private static async Task CallChunkAsync(HttpResponse response, ResponseHeader header, GenerationSettings settings, int index, CustomCallDeltas deltas, CallDelta call, CancellationToken cancellationToken)
    {
        var (text, custom) = deltas.Translate(call);
        if (text is not null)
        {
            await Event(response, OpenAiJson.ToolCallChunk(header, index, call.CallIndex, call.Opening, text, settings.IncludeUsage, custom), cancellationToken);
        }
    }

    /// <summary>
    /// The audit record's time to first token (when the first generated text of any choice arrived) and queue time (the
    /// longest wait of a choice, reported with its last delta).
    /// </summary>
    internal static void FirstText(HttpContext http, GenerationDelta delta)
    {
        var audit = Audit.RequestAudit.Of(http);
        if (delta.Usage is { } usage)
        {
            audit.QueueMs = Math.Max(audit.QueueMs ?? 0, usage.QueueMilliseconds);
        }

        if (audit.FirstTokenAt is null && delta.Text.Length > 0)
        {
            audit.FirstTokenAt = (http.RequestServices.GetService(typeof(TimeProvider)) as TimeProvider ?? TimeProvider.System).GetTimestamp();
        }
    }

    internal static void Finished(HttpContext http, string finishReason, int completionTokens)
    {
        var audit = Audit.RequestAudit.Of(http);
        (audit.FinishReason, audit.CompletionTokens) = (finishReason, completionTokens);
    }

    private static void Failed(HttpContext http, ChoiceDelta item, int completionTokens) =>
        Finished(http, item.Error is null ? "cancelled" : "error", completionTokens);

    private static string Wire(FinishReason reason) => reason == FinishReason.ContentFilter ? "content_filter" : reason.ToString().ToLowerInvariant();

    internal static OpenAiError EngineFailure(ChoiceDelta item) => item.Error switch
    {
        null => OpenAiError.Unavailable("The appliance is shutting down; the request was cancelled.", "shutting_down"),
        Appliance.Engine.EngineFailedException => OpenAiError.Unavailable("The model's engine failed and is restarting; please retry.", "engine_error"),
        // Its own output could not be read (its grammar, stop strings, a token that does not decode): the same request
        // would fail again, so no invitation to retry.
        Appliance.Engine.RequestFailedException failed => new OpenAiError(StatusCodes.Status500InternalServerError,
            $"The request failed while its output was produced: {failed.InnerException?.Message ?? failed.Message}", "server_error", null, "request_failed"),
        _ => new OpenAiError(StatusCodes.Status500InternalServerError, "The model failed while generating; please retry.", "server_error", null, "engine_error"),
    };

    /// <summary>Writes one event; <paramref name="check"/> as in <see cref="RequestDeadline.SendFrameAsync"/>.</summary>
    private static Task Event(HttpResponse response, byte[] json, CancellationToken check) =>
        RequestDeadline.SendFrameAsync(response, check, DataPrefix, json, EventEnd);
}
