namespace Appliance.Engine.Requests;

/// <summary>
/// Scheduling class of a request: interactive requests are admitted before batch ones, but batch requests still get a
/// share of admissions (<see cref="Scheduling.SchedulerOptions.InteractivePerBatch"/>) so that they never starve.
/// </summary>
public enum RequestPriority
{
    Interactive,
    Batch,
}
