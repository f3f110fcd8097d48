namespace Appliance.Engine;

/// <summary>
/// A request failed in what belongs to it alone (its constraint, its stop strings, decoding its output): the engine and
/// the other requests go on, and a replica router does not retry it elsewhere (it would fail there the same way).
/// </summary>
public sealed class RequestFailedException(string message, Exception inner) : InvalidOperationException(message, inner);
