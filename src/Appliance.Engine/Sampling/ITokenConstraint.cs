namespace Appliance.Engine.Sampling;

/// <summary>
/// A language the output must stay in (for example JSON that fits a schema), enforced token by token: before each pick
/// the sampler may only choose tokens that keep the output a prefix of the language. Built off the engine loop.
/// </summary>
public interface ITokenConstraint
{
    /// <summary>A fresh matcher for one sequence, at the start of the language.</summary>
    ITokenConstraintState Start();
}

/// <summary>One sequence's position in a constrained language. Used only on the engine loop (not thread-safe).</summary>
public interface ITokenConstraintState
{
    /// <summary>
    /// Sets the logits of forbidden tokens to negative infinity. <paramref name="endTokens"/> (end of sequence) are
    /// allowed only where the output is complete; <paramref name="tokensLeft"/> (how many may follow this one) lets the
    /// constraint steer towards a complete output before the budget ends. Returns how many tokens remain allowed.
    /// </summary>
    int Restrict(Span<float> logits, IReadOnlySet<int> endTokens, int tokensLeft);

    /// <summary>Moves past a chosen token (an end token marks the output complete).</summary>
    void Accept(int token);

    /// <summary>Whether the output so far is a complete sentence of the language.</summary>
    bool IsComplete { get; }
}
