namespace Appliance.Engine;

/// <summary>
/// A model run failed while the request was in its batch. <see cref="ProducedOutput"/> says whether the request had
/// already generated tokens: one that had not may be retried on another replica without the caller noticing.
/// </summary>
public sealed class ModelRunException(string message, bool producedOutput, Exception inner) : InvalidOperationException(message, inner)
{
    public bool ProducedOutput { get; } = producedOutput;
}
