using Appliance.Engine.Scheduling;

namespace Appliance.Engine.Tests.Scheduling;

public sealed class ServiceRateTests
{
    [Fact]
    public void Without_measurements_the_retry_is_one_second() => Assert.Equal(1, new ServiceRate(slots: 8).RetryAfterSeconds(500));

    [Fact]
    public void The_retry_grows_with_the_queue_over_the_measured_service_time_and_stays_within_a_minute()
    {
        var rate = new ServiceRate(slots: 2);
        rate.Finished(TimeSpan.FromSeconds(0.4));
        rate.Finished(TimeSpan.FromSeconds(0.6)); // two slots, half a second each: four requests a second

        Assert.Equal(25, rate.RetryAfterSeconds(100));
        Assert.Equal(60, rate.RetryAfterSeconds(100_000));
        Assert.Equal(1, rate.RetryAfterSeconds(0));
    }

    [Fact]
    public void A_request_that_fits_a_free_slot_waits_for_nothing()
    {
        var rate = new ServiceRate(slots: 8);
        rate.Finished(TimeSpan.FromSeconds(30));

        // Three others submitted with it, eight slots free: all four start at once, however slow requests are.
        Assert.Equal(TimeSpan.Zero, rate.ExpectedWait(waitingAhead: 3, freeSlots: 8));
        // Every slot taken and two waiting before it: the third release is its turn.
        Assert.Equal(TimeSpan.FromSeconds(3 * 30.0 / 8), rate.ExpectedWait(waitingAhead: 2, freeSlots: 0));
    }
}
