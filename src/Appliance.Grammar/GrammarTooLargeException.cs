namespace Appliance.Grammar;

/// <summary>A schema whose automaton would exceed the limits that keep matching fast.</summary>
public sealed class GrammarTooLargeException(string message) : Exception(message);
