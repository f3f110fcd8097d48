using Appliance.Engine.Sampling;

namespace Appliance.Engine.Tests.Sampling;

/// <summary>A thought that is free until its closing tag, closed for the model at its budget, then a constrained answer.</summary>
public sealed class ThinkingConstraintTests
{
    private const int Vocabulary = 20;
    private static readonly int[] Close = [7, 8]; // the closing tag as two tokens
    private static readonly HashSet<int> End = [0];

    [Fact]
    public void The_thought_is_free_until_its_budget_then_the_closing_tag_is_forced_token_by_token()
    {
        var state = new ThinkingConstraint(Close, answer: null, budget: 3).Start();
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(Vocabulary, Restrict(state, tokensLeft: 100, out _));
            state.Accept(5);
        }

        Assert.Equal(1, Restrict(state, 100, out var logits));
        Assert.Equal(7, Allowed(logits).Single());
        state.Accept(7);
        Assert.Equal(1, Restrict(state, 100, out logits));
        Assert.Equal(8, Allowed(logits).Single());
        state.Accept(8);

        // The answer is free (no answer constraint), end token included.
        Assert.Equal(Vocabulary, Restrict(state, 100, out _));
        Assert.True(state.IsComplete);
    }

    [Fact]
    public void A_thought_the_model_closes_itself_hands_over_to_the_answer_constraint()
    {
        var state = new ThinkingConstraint(Close, new OnlyToken(3), budget: null).Start();
        Restrict(state, 100, out var logits);
        Assert.DoesNotContain(0, Allowed(logits)); // no ending inside the thought when an answer must follow
        state.Accept(7);
        state.Accept(9); // not the rest of the tag: still thinking
        Assert.Equal(Vocabulary - End.Count, Restrict(state, 100, out _));
        state.Accept(7);
        state.Accept(8);

        Assert.Equal(1, Restrict(state, 100, out logits));
        Assert.Equal(3, Allowed(logits).Single());
        Assert.False(state.IsComplete);
        state.Accept(3);
        Assert.True(state.IsComplete);
    }

    [Fact]
    public void With_an_answer_to_come_the_tag_is_forced_while_it_still_fits()
    {
        var state = new ThinkingConstraint(Close, new OnlyToken(3), budget: null).Start();
        state.Accept(5);
        Assert.Equal(1, Restrict(state, tokensLeft: 2, out var logits)); // the tag's two tokens and one answer token
        Assert.Equal(7, Allowed(logits).Single());
    }

    private static int Restrict(ITokenConstraintState state, int tokensLeft, out float[] logits)
    {
        logits = new float[Vocabulary];
        return state.Restrict(logits, End, tokensLeft);
    }

    private static List<int> Allowed(float[] logits) => [.. Enumerable.Range(0, logits.Length).Where(i => !float.IsNegativeInfinity(logits[i]))];

    /// <summary>An answer language of exactly one token.</summary>
    private sealed class OnlyToken(int token) : ITokenConstraint
    {
        public ITokenConstraintState Start() => new State(token);

        private sealed class State(int token) : ITokenConstraintState
        {
            public bool IsComplete { get; private set; }

            public int Restrict(Span<float> logits, IReadOnlySet<int> endTokens, int tokensLeft)
            {
                for (var i = 0; i < logits.Length; i++)
                {
                    logits[i] = i == token && !IsComplete ? logits[i] : float.NegativeInfinity;
                }

                return IsComplete ? 0 : 1;
            }

            public void Accept(int accepted) => IsComplete |= accepted == token;
        }
    }
}
