namespace Appliance.Engine.Sampling;

/// <summary>
/// A reasoning model's output when it starts inside a thought: the thought is free text until the model writes the
/// closing tag (as <paramref name="close"/>'s tokens), then the answer follows <paramref name="answer"/> (a response
/// format or a required tool call), or stays free when there is none. The thought is closed for the model (the closing
/// tag's tokens forced one by one) once it has used <paramref name="budget"/> tokens, so that a thinking budget holds
/// and a constrained answer keeps room to be written.
/// </summary>
public sealed class ThinkingConstraint(IReadOnlyList<int> close, ITokenConstraint? answer, int? budget) : ITokenConstraint
{
    public ITokenConstraintState Start() => new State(close, answer, budget);

    private sealed class State(IReadOnlyList<int> close, ITokenConstraint? answer, int? budget) : ITokenConstraintState
    {
        private int _thoughtTokens;
        private int _matched; // how many of the closing tag's tokens the thought ends with
        private bool _forcing;
        private ITokenConstraintState? _answer;
        private bool _answering;

        public bool IsComplete => _answering && (_answer?.IsComplete ?? true);

        public int Restrict(Span<float> logits, IReadOnlySet<int> endTokens, int tokensLeft)
        {
            if (_answering)
            {
                return _answer?.Restrict(logits, endTokens, tokensLeft) ?? logits.Length;
            }

            // Close the thought when its budget is spent, or while there is still room for the closing tag itself.
            _forcing |= _thoughtTokens >= budget || (answer is not null && tokensLeft < close.Count - _matched + 1);
            if (!_forcing)
            {
                var allowed = logits.Length;
                if (answer is not null)
                {
                    // An answer that must follow cannot be skipped by ending inside the thought.
                    foreach (var end in endTokens)
                    {
                        if (end < logits.Length && !float.IsNegativeInfinity(logits[end]))
                        {
                            logits[end] = float.NegativeInfinity;
                            allowed--;
                        }
                    }
                }

                return allowed;
            }

            var next = close[_matched];
            var kept = logits[next];
            logits.Fill(float.NegativeInfinity);
            logits[next] = float.IsNegativeInfinity(kept) ? 0f : kept;
            return 1;
        }

        public void Accept(int token)
        {
            if (_answering)
            {
                _answer?.Accept(token);
                return;
            }

            _thoughtTokens++;
            _matched = token == close[_matched] ? _matched + 1 : token == close[0] ? 1 : 0;
            if (_matched == close.Count)
            {
                _answering = true;
                _answer = answer?.Start();
            }
        }
    }
}
