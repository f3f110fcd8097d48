using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Appliance.Api.Models;
using Appliance.Engine;
using Appliance.Engine.Requests;

namespace Appliance.Api.OpenAi;

/// <summary>One choice to generate: its index in the response and its prompt.</summary>
/// <param name="MaxTokens">This choice's own most tokens (a legacy completion's prompts each leave their own room); null: the request's.</param>
/// <param name="Echo">The prompt's text, when a legacy completion echoes it (its tokens are then scored if logprobs are asked).</param>
internal readonly record struct ChoiceInput(int Index, IReadOnlyList<int> PromptTokens, int? MaxTokens = null, string? Echo = null);

/// <summary>A delta of one choice, or the error that ended it.</summary>
internal readonly record struct ChoiceDelta(int Index, GenerationDelta? Delta, Exception? Error);

/// <summary>The engine streams of every choice of one request, submitted together and read merged.</summary>
internal sealed class ChoiceStreams : IAsyncDisposable
{
    private readonly List<(int Index, GenerationStream Stream)> _streams;
    private int _generatedTokens;

    private ChoiceStreams(List<(int Index, GenerationStream Stream)> streams) => _streams = streams;

    /// <summary>Submits every choice; when the queue is full, cancels those already queued and answers 429.</summary>
    /// <param name="background">A batch's request: the engine's batch class, whatever service_tier says.</param>
    public static ChoiceStreams Submit(ServedModel model, IReadOnlyList<ChoiceInput> inputs, GenerationSettings settings, int maxTokens, string requestId, string tenant, TimeSpan maxQueueWait, bool background = false)
    {
        var streams = new List<(int, GenerationStream)>(inputs.Count);
        try
        {
            foreach (var input in inputs)
            {
                var sampling = settings.ToSampling(model.Defaults, input.MaxTokens ?? maxTokens, input.Index);
                var request = new GenerationRequest($"{requestId}-{input.Index}", input.PromptTokens, sampling)
                {
                    Tenant = tenant,
                    Priority = background ? RequestPriority.Batch : settings.Priority,
                    MaxQueueWait = maxQueueWait, // refused now rather than cancelled by the request timeout later
                    PromptLogprobs = input.Echo is not null && settings.Logprobs,
                };
                streams.Add((input.Index, model.Engine.Submit(request)));
            }

            return new ChoiceStreams(streams);
        }
        catch (Exception exception)
        {
            foreach (var (_, stream) in streams)
            {
                stream.Dispose();
            }

            throw exception switch
            {
                EngineOverloadedException overloaded => new OpenAiRequestException(OpenAiError.Overloaded(model.Id, overloaded.Message), overloaded.RetryAfterSeconds),
                EngineFailedException failed => new OpenAiRequestException(OpenAiError.Unavailable(failed.Message, "engine_error"), failed.RetryAfterSeconds),
                ArgumentException argument => new OpenAiRequestException(OpenAiError.Invalid(argument.Message, null)),
                // The engine stopped between the model's lookup and the submission: mostly a reload or unload (the
                // next attempt finds the new version), else the node's shutdown (the balancer sends it elsewhere).
                ObjectDisposedException => new OpenAiRequestException(OpenAiError.Unavailable(
                    $"The model '{model.Id}' was being reloaded or unloaded, or the appliance shutting down, as the request arrived; please retry.", "model_unavailable"), 1),
                _ => exception,
            };
        }
    }

    /// <summary>
    /// Tokens the engine generated for every choice so far, finished or not: what a request cut short (the client left,
    /// a timeout, an engine failure) is charged and audited for, since only a finished choice reports its usage.
    /// </summary>
    public int GeneratedTokens => Volatile.Read(ref _generatedTokens);

    /// <summary>Every choice's deltas in the order they arrive.</summary>
    public async IAsyncEnumerable<ChoiceDelta> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var merged = Channel.CreateUnbounded<ChoiceDelta>(new UnboundedChannelOptions { SingleReader = true });
        var pumps = _streams.Select(async s =>
        {
            try
            {
                await foreach (var delta in s.Stream.WithCancellation(cancellationToken).ConfigureAwait(false))
                {
                    Interlocked.Add(ref _generatedTokens, delta.TokenIds.Count);
                    merged.Writer.TryWrite(new ChoiceDelta(s.Index, delta, null));
                }
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                merged.Writer.TryWrite(new ChoiceDelta(s.Index, null, exception));
            }
        }).ToList();
        _ = Task.WhenAll(pumps).ContinueWith(t => merged.Writer.TryComplete(t.Exception), TaskScheduler.Default);
        await foreach (var item in merged.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return item;
        }
    }

    public ValueTask DisposeAsync()
    {
        foreach (var (_, stream) in _streams)
        {
            stream.Dispose();
        }

        return ValueTask.CompletedTask;
    }
}
