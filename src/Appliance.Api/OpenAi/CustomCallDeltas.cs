using System.Text;

namespace Appliance.Api.OpenAi;

/// <summary>
/// One streamed chat choice's tool-call deltas as they go out: a function's arguments as they come; a custom tool's
/// call, whose arguments the model writes as <c>{"input": "..."}</c>, as its input text, decoded as it comes.
/// </summary>
internal sealed class CustomCallDeltas(ToolUse tools)
{
    private readonly Dictionary<int, (FreeformInput.Stream Reader, StringBuilder Sent)> _custom = [];

    /// <summary>What a delta sends (null: nothing yet) and whether its call is a custom tool's.</summary>
    public (string? Text, bool Custom) Translate(CallDelta delta)
    {
        if (delta.Opening is { } opening && tools.IsCustom(opening.Name))
        {
            _custom[delta.CallIndex] = (new FreeformInput.Stream(), new StringBuilder());
        }

        if (!_custom.TryGetValue(delta.CallIndex, out var custom))
        {
            return (delta.Arguments, false);
        }

        var text = custom.Reader.Add(delta.Arguments);
        custom.Sent.Append(text);
        return (delta.Opening is not null || text.Length > 0 ? text : null, true);
    }

    /// <summary>
    /// At the end, given a custom call's whole arguments: the part of its input not sent yet (arguments laid out
    /// otherwise than the reader follows), or null.
    /// </summary>
    public string? Rest(int callIndex, string arguments)
    {
        if (!_custom.TryGetValue(callIndex, out var custom))
        {
            return null;
        }

        var whole = FreeformInput.Of(arguments);
        var sent = custom.Sent.ToString();
        return whole.Length > sent.Length && whole.StartsWith(sent, StringComparison.Ordinal) ? whole[sent.Length..] : null;
    }
}
