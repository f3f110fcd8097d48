namespace Appliance.Engine.Speculation;

/// <summary>
/// Proposes tokens a sequence is likely to continue with, for speculative decoding to verify in one run. The default
/// is prompt lookup; another proposer (a draft model, or a test's known continuation) plugs in through
/// <see cref="Scheduling.SchedulerOptions.DraftProposer"/>. Called on the engine thread.
/// </summary>
public interface IDraftProposer
{
    /// <summary>Writes up to drafts.Length tokens to follow <paramref name="tokens"/> (prompt and output so far); returns how many.</summary>
    int Propose(IReadOnlyList<int> tokens, Span<int> drafts);
}

/// <summary>Prompt lookup with n-grams of <paramref name="maxNgram"/> down to 2 tokens.</summary>
public sealed class PromptLookupProposer(int maxNgram) : IDraftProposer
{
    public int Propose(IReadOnlyList<int> tokens, Span<int> drafts) => PromptLookup.Propose(tokens, maxNgram, 2, drafts);
}
