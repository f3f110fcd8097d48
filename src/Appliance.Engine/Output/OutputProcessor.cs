using Appliance.Engine.Requests;

namespace Appliance.Engine.Output;

/// <summary>
/// Turns one sequence's sampled tokens into deltas: incremental detokenisation, stop strings, EOS and length limits.
/// </summary>
internal sealed class OutputProcessor(ITokenizer tokenizer, SamplingParams parameters, IReadOnlySet<int> eosTokenIds)
{
    private readonly IncrementalDetokenizer _detokenizer = new(tokenizer);
    private readonly StopStringFilter _stops = new(parameters.StopStrings);
    private readonly IOutputScreen? _screen = parameters.OutputScreen?.Invoke();

    public int CompletionTokens { get; private set; }

    /// <summary>The stop string that ended the sequence, or null (end token, length, or still running).</summary>
    public string? MatchedStopString => _stops.Matched;

    /// <summary>Processes a sampled token; returns the text to emit and the finish reason when the sequence ends.</summary>
    public (string Text, FinishReason? Finish) Accept(int token, bool contextFull)
    {
        var (text, finish) = Generated(token, contextFull);
        return _screen is null ? (text, finish) : Screen(text, finish);
    }

    /// <summary>The screen sees the text after stop strings are cut (they are never sent, so never screened).</summary>
    private (string Text, FinishReason? Finish) Screen(string text, FinishReason? finish)
    {
        var screened = _screen!.Push(text);
        if (!screened.Blocked && finish is not null)
        {
            var rest = _screen.Flush();
            screened = new ScreenedText(screened.Text + rest.Text, rest.Blocked);
        }

        return (screened.Text, screened.Blocked ? FinishReason.ContentFilter : finish);
    }

    private (string Text, FinishReason? Finish) Generated(int token, bool contextFull)
    {
        CompletionTokens++;
        if (!parameters.IgnoreEos && eosTokenIds.Contains(token))
        {
            return (_stops.Push(_detokenizer.Flush()) + _stops.Flush(), FinishReason.Stop);
        }

        var text = _stops.Push(_detokenizer.Push(token));
        if (_stops.Stopped)
        {
            return (text, FinishReason.Stop);
        }

        if (CompletionTokens >= parameters.MaxTokens || contextFull)
        {
            text += _stops.Push(_detokenizer.Flush());
            return _stops.Stopped ? (text, FinishReason.Stop) : (text + _stops.Flush(), FinishReason.Length);
        }

        return (text, null);
    }
}
