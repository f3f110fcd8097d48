using System.Threading.Channels;
using Appliance.Engine.Output;
using Appliance.Engine.Requests;
using Appliance.Engine.Sampling;

namespace Appliance.Engine.Scheduling;

/// <summary>A request inside the engine: its tokens so far, how many are in the KV cache, and where its output goes.</summary>
internal sealed class Sequence
{
    private int _cancelRequested;

    public Sequence(long id, GenerationRequest request, SamplingState sampling, OutputProcessor output, ChannelWriter<GenerationDelta> writer)
    {
        Id = id;
        Request = request;
        Tokens = [.. request.PromptTokens];
        PromptLength = request.PromptTokens.Count;
        Sampling = sampling;
        Output = output;
        Writer = writer;
        PromptLogprobs = request.PromptLogprobs ? new List<TokenLogprob>(PromptLength - 1) : null;
    }

    public long Id { get; }

    /// <summary>Order of arrival in the waiting queue (ties between tenants go to the earlier one).</summary>
    public long Arrival { get; set; }

    /// <summary>Stopwatch timestamp of the submission.</summary>
    public long SubmittedAt { get; } = System.Diagnostics.Stopwatch.GetTimestamp();

    /// <summary>Stopwatch timestamp of the first prefill step, once there was one.</summary>
    public long? AdmittedAt { get; set; }

    /// <summary>How long the sequence waited before its prefill began (so far, while it still waits).</summary>
    public double QueueMilliseconds =>
        System.Diagnostics.Stopwatch.GetElapsedTime(SubmittedAt, AdmittedAt ?? System.Diagnostics.Stopwatch.GetTimestamp()).TotalMilliseconds;

    public GenerationRequest Request { get; }

    /// <summary>Prompt followed by generated tokens.</summary>
    public List<int> Tokens { get; }

    public int PromptLength { get; }

    /// <summary>Tokens already run through the model (present in the runner's KV cache).</summary>
    public int Computed { get; set; }

    public SequenceStatus Status { get; set; } = SequenceStatus.Waiting;

    /// <summary>Decode steps to skip before drafting again: grows while drafts are rejected, so open-ended text pays little.</summary>
    public int SpeculationPause { get; set; }

    /// <summary>The pause after the next rejected draft.</summary>
    public int SpeculationBackoff { get; set; }

    /// <summary>Prompt tokens found in the prefix cache at its first admission.</summary>
    public int CachedPromptTokens { get; set; }

    /// <summary>
    /// The prompt's scores gathered so far, while it is being scored (<see cref="GenerationRequest.PromptLogprobs"/>);
    /// null once they were delivered, so that a preempted sequence's recompute neither scores again nor avoids the cache.
    /// </summary>
    public List<TokenLogprob>? PromptLogprobs { get; set; }

    /// <summary>Times the sequence was sent back to the queue to make room for another tenant.</summary>
    public int Preemptions { get; set; }

    public SamplingState Sampling { get; }

    public OutputProcessor Output { get; }

    public ChannelWriter<GenerationDelta> Writer { get; }

    /// <summary>Tokens the sequence may hold at most: prompt plus max_tokens, capped by the context.</summary>
    public int ReservedTokens(int contextLength) =>
        Math.Min(contextLength, PromptLength + Request.Sampling.MaxTokens);

    public bool CancelRequested => Volatile.Read(ref _cancelRequested) == 1;

    /// <summary>Called from any thread (the reader went away); the engine acts on it at its next step.</summary>
    public void RequestCancel() => Interlocked.Exchange(ref _cancelRequested, 1);
}
