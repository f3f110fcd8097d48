using Appliance.Engine.Scheduling;

namespace Appliance.Engine.Tests.Scheduling;

public sealed class ServiceRateTests
{
    [Fact]
    public void Without_measurements_the_retry_is_one_second() => Assert.Equal(1, new ServiceRate().RetryAfterSeconds(500));

    [Fact]
    public async Task The_retry_grows_with_the_queue_over_the_measured_rate_and_stays_within_a_minute()
    {
        var rate = new ServiceRate();
        rate.Finished();
        await Task.Delay(200);
        rate.Finished(); // at most five requests a second

        Assert.InRange(rate.RetryAfterSeconds(100), 20, 60);
        Assert.Equal(60, rate.RetryAfterSeconds(100_000));
        Assert.Equal(1, rate.RetryAfterSeconds(0));
    }
}
