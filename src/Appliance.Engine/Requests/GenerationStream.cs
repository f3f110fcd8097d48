using System.Threading.Channels;

namespace Appliance.Engine.Requests;

/// <summary>
/// One request's own stream of deltas. Disposing it (or cancelling the enumeration) cancels the request;
/// the engine frees its slot at its next step.
/// </summary>
public sealed class GenerationStream : IAsyncEnumerable<GenerationDelta>, IAsyncDisposable, IDisposable
{
    private readonly ChannelReader<GenerationDelta> _reader;
    private readonly Action _cancel;

    internal GenerationStream(string requestId, ChannelReader<GenerationDelta> reader, Action cancel)
    {
        RequestId = requestId;
        _reader = reader;
        _cancel = cancel;
    }

    public string RequestId { get; }

    public async IAsyncEnumerator<GenerationDelta> GetAsyncEnumerator(CancellationToken cancellationToken = default)
    {
        using var registration = cancellationToken.Register(_cancel);
        while (await _reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (_reader.TryRead(out var delta))
            {
                yield return delta;
            }
        }
    }

    /// <summary>Reads the whole stream and joins it into one result.</summary>
    public async Task<GenerationResult> CollectAsync(CancellationToken cancellationToken = default)
    {
        var text = new System.Text.StringBuilder();
        var tokens = new List<int>();
        var logprobs = new List<TokenLogprob>();
        FinishReason? finish = null;
        GenerationUsage? usage = null;
        await foreach (var delta in this.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            text.Append(delta.Text);
            tokens.AddRange(delta.TokenIds);
            if (delta.Logprobs is not null)
            {
                logprobs.AddRange(delta.Logprobs);
            }

            finish = delta.FinishReason ?? finish;
            usage = delta.Usage ?? usage;
        }

        return new GenerationResult(text.ToString(), tokens, logprobs, finish ?? FinishReason.Cancelled, usage ?? default);
    }

    public void Dispose() => _cancel();

    public ValueTask DisposeAsync()
    {
        _cancel();
        return ValueTask.CompletedTask;
    }
}

/// <summary>A whole generation, joined from its deltas.</summary>
public sealed record GenerationResult(
    string Text,
    IReadOnlyList<int> TokenIds,
    IReadOnlyList<TokenLogprob> Logprobs,
    FinishReason FinishReason,
    GenerationUsage Usage);
