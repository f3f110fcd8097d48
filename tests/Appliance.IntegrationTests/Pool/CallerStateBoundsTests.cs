using System.Security.Claims;
using Appliance.Host.Metrics;
using Appliance.Host.Options;
using Appliance.Host.Quotas;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Appliance.IntegrationTests.Pool;

/// <summary>State kept per caller is bounded by recent activity, not by every caller ever seen.</summary>
public sealed class CallerStateBoundsTests
{
    [Fact]
    public void Quota_windows_of_callers_without_usage_today_are_forgotten()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero));
        var quotas = Options.Create(new QuotaOptions { User = new QuotaLimits { TokensPerDay = 1_000_000 } });
        var teams = new Appliance.Host.Audit.CallerTeam(Options.Create(new AuditOptions()), quotas, Options.Create(new PoolOptions()),
            Microsoft.Extensions.Logging.Abstractions.NullLogger<Appliance.Host.Audit.CallerTeam>.Instance);
        var ledger = new QuotaLedger(quotas, teams, new NoRefusals(), time);

        for (var i = 0; i < 500; i++)
        {
            using var lease = ledger.TryEnter(User($"user-{i}"), out _)!;
            lease.Charge(10);
        }

        Assert.Equal(500, ledger.TrackedCallers); // each has usage today

        time.Advance(TimeSpan.FromDays(1));
        using (ledger.TryEnter(User("tomorrow"), out _))
        {
            Assert.Equal(1, ledger.TrackedCallers); // yesterday's callers say nothing today's windows would not
        }
    }

    [Fact]
    public void A_label_fed_by_callers_keeps_at_most_its_limit_of_values()
    {
        var labels = new BoundedLabelValues(3);

        Assert.Equal(["a", "b", "c", "other", "a", "other"], new[] { "a", "b", "c", "d", "a", "e" }.Select(labels.Of).ToArray());
    }

    private sealed class NoRefusals : IQuotaRefusals
    {
        public void QuotaRefused(string quota, string scope) => Assert.Fail($"nobody should be refused here ({quota}, {scope})");
    }

    private static ClaimsPrincipal User(string subject) =>
        new(new ClaimsIdentity([new Claim(Appliance.Identity.ApplianceClaims.Subject, subject), new Claim(ClaimTypes.Name, subject)], "test", ClaimTypes.Name, ClaimTypes.Role));
}
