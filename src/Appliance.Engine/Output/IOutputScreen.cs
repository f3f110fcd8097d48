namespace Appliance.Engine.Output;

/// <summary>
/// Screens one sequence's generated text before it leaves the engine (the operator's guardrails): it may hold text
/// back while a match could still be forming, replace what must not be shown, and end the sequence at what must not be
/// sent. One instance per sequence; the engine calls it from its loop only.
/// </summary>
public interface IOutputScreen
{
    /// <summary>Adds newly generated text; returns what may be sent now, and whether the sequence must end there.</summary>
    ScreenedText Push(string text);

    /// <summary>Generation ended: screens what is still held and returns it.</summary>
    ScreenedText Flush();
}

/// <summary>Text an <see cref="IOutputScreen"/> lets through; <paramref name="Blocked"/>: nothing after it may be sent.</summary>
public readonly record struct ScreenedText(string Text, bool Blocked);
