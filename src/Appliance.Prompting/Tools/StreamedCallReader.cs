namespace Appliance.Prompting;

/// <summary>
/// Reads tool calls out of output while it is generated (a forced tool_choice, where a grammar keeps the output to the
/// format's call layout): each call's name once it is complete, and its arguments as far as they have come.
/// </summary>
public interface IStreamedCallReader
{
    /// <summary>The calls begun so far, in order.</summary>
    IReadOnlyList<PartialToolCall> Calls { get; }

    /// <summary>Reads the next piece of output.</summary>
    void Append(string text);
}
