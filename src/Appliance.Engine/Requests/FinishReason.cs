namespace Appliance.Engine.Requests;

public enum FinishReason
{
    /// <summary>An end-of-sequence token or a stop string.</summary>
    Stop,

    /// <summary>max_tokens or the model's context length was reached.</summary>
    Length,

    /// <summary>The caller went away or the engine shut down.</summary>
    Cancelled,

    /// <summary>The sequence's output screen (the operator's guardrails) withheld the rest of the answer.</summary>
    ContentFilter,
}
