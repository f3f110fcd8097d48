using Appliance.Engine.Requests;

namespace Appliance.Engine.Sampling;

/// <summary>One sequence's sampling state: its parameters, its own random stream and the counts penalties need.</summary>
internal sealed class SamplingState
{
    private readonly Dictionary<int, int> _generatedCounts = [];
    private readonly HashSet<int> _seen;

    public SamplingState(SamplingParams parameters, IReadOnlyList<int> promptTokens, long seed)
    {
        Parameters = parameters;
        // A per-request generator seeded once makes a request's tokens independent of whatever else is batched.
        Random = new Random(unchecked((int)(seed ^ (seed >> 32))));
        _seen = parameters.RepetitionPenalty != 1f ? [.. promptTokens] : [];
        Constraint = parameters.Constraint?.Start();
    }

    /// <summary>Where the output stands in its constrained language, or null for free text.</summary>
    public ITokenConstraintState? Constraint { get; }

    /// <summary>Tokens picked so far.</summary>
    public int Generated { get; private set; }

    public SamplingParams Parameters { get; }

    public Random Random { get; }

    public bool HasPenalties =>
        Parameters.PresencePenalty != 0f || Parameters.FrequencyPenalty != 0f || Parameters.RepetitionPenalty != 1f;

    public IReadOnlyDictionary<int, int> GeneratedCounts => _generatedCounts;

    public IReadOnlySet<int> SeenTokens => _seen;

    public void Accept(int token)
    {
        Generated++;
        Constraint?.Accept(token);
        _generatedCounts[token] = _generatedCounts.GetValueOrDefault(token) + 1;
        if (Parameters.RepetitionPenalty != 1f)
        {
            _seen.Add(token);
        }
    }
}
