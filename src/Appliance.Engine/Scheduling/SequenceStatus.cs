namespace Appliance.Engine.Scheduling;

internal enum SequenceStatus
{
    Waiting,
    Prefilling,
    Running,
    Finished,
}
