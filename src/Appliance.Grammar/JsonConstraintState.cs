using Appliance.Engine.Sampling;

namespace Appliance.Grammar;

/// <summary>One sequence's place in a <see cref="ConstrainedGrammar"/>.</summary>
internal sealed class JsonConstraintState(ConstrainedGrammar grammar, int start) : ITokenConstraintState
{
    private int _state = start;
    private bool _ended;
    private IReadOnlySet<int> _endTokens = new HashSet<int>();

    public bool IsComplete => _state != Automaton.LazyDfa.Dead && grammar.IsAccepting(_state);

    public int Restrict(Span<float> logits, IReadOnlySet<int> endTokens, int tokensLeft)
    {
        _endTokens = endTokens;
        var complete = IsComplete;
        if (_ended || _state == Automaton.LazyDfa.Dead)
        {
            return OnlyEnd(logits, endTokens);
        }

        TokenTable table;
        try
        {
            table = grammar.TableFor(_state);
        }
        catch (GrammarTooLargeException)
        {
            // Never on the engine's loop: an automaton that outgrows its bound ends this output instead.
            grammar.MarkExhausted();
            _state = Automaton.LazyDfa.Dead;
            return OnlyEnd(logits, endTokens);
        }

        // Near the end of the budget only tokens that leave a completion within it, keeping one token for the end
        // token so that a completed answer finishes with "stop"; if none is that close, the closest ones.
        var room = tokensLeft - (endTokens.Count > 0 ? 1 : 0);
        var limit = room >= TokenTable.Far ? TokenTable.Far : (byte)Math.Max(room, 0);
        if (limit < TokenTable.Far && !(complete && endTokens.Count > 0) && !table.AnyWithin(limit))
        {
            limit = table.Closest;
        }

        Span<float> ends = stackalloc float[Math.Min(endTokens.Count, 64)];
        var saved = 0;
        foreach (var end in endTokens)
        {
            if (saved < ends.Length && end < logits.Length)
            {
                ends[saved++] = logits[end];
            }
        }

        var allowed = table.Apply(logits, limit);
        saved = 0;
        foreach (var end in endTokens)
        {
            if (saved < ends.Length && end < logits.Length)
            {
                var value = ends[saved++];
                var wasAllowed = !float.IsNegativeInfinity(logits[end]);
                logits[end] = complete ? value : float.NegativeInfinity;
                allowed += (complete ? 1 : 0) - (wasAllowed ? 1 : 0);
            }
        }

        return allowed;
    }

    public void Accept(int token)
    {
        if (_ended)
        {
            return;
        }

        if (_endTokens.Contains(token) || grammar.BytesOf(token) is not { } bytes)
        {
            _ended = true;
            return;
        }

        // A token the mask forbade (only when no allowed token was left): the output can no longer be completed.
        try
        {
            _state = _state == Automaton.LazyDfa.Dead ? _state : grammar.Walk(_state, bytes);
        }
        catch (GrammarTooLargeException)
        {
            grammar.MarkExhausted();
            _state = Automaton.LazyDfa.Dead;
        }
    }

    private static int OnlyEnd(Span<float> logits, IReadOnlySet<int> endTokens)
    {
        var allowed = 0;
        for (var token = 0; token < logits.Length; token++)
        {
            if (endTokens.Contains(token))
            {
                allowed++;
            }
            else
            {
                logits[token] = float.NegativeInfinity;
            }
        }

        return allowed;
    }
}
