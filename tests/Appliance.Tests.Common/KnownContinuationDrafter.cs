using Appliance.Engine.Speculation;

namespace Appliance.Tests.Common;

/// <summary>
/// Drafts what plain decoding is known to produce after a prompt (copy-heavy text stood in for, since a random model
/// never copies), with every n-th token of the answer proposed wrong when asked (0: all right).
/// </summary>
public sealed class KnownContinuationDrafter(int promptLength, int[] continuation, int wrongEvery, int vocabularySize = 50000) : IDraftProposer
{
    public int Propose(IReadOnlyList<int> tokens, Span<int> drafts)
    {
        var from = tokens.Count - promptLength;
        var count = Math.Max(0, Math.Min(drafts.Length, continuation.Length - from));
        for (var i = 0; i < count; i++)
        {
            var wrong = wrongEvery > 0 && (from + i) % wrongEvery == wrongEvery - 1; // by position in the answer
            drafts[i] = wrong ? (continuation[from + i] + 1) % vocabularySize : continuation[from + i];
        }

        return count;
    }
}
