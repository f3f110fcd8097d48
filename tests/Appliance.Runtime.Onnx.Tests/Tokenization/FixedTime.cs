namespace Appliance.Runtime.Onnx.Tests.Tokenization;

/// <summary>A clock stopped at one instant in UTC, so that templates printing today's date render the reference's date.</summary>
internal sealed class FixedTime(DateTimeOffset now) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => now;

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
}
