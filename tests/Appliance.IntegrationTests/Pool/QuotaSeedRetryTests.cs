using System.Reflection;
using Appliance.Api.Audit;
using Appliance.Audit.Stores;
using Appliance.Host.Options;
using Appliance.Host.Quotas;
using Appliance.Tests.Common;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Appliance.IntegrationTests.Pool;

/// <summary>
/// A node whose audit store did not answer at start (its usage of the day unread) reads it once the store answers, so a
/// restart during a database hiccup does not hand every caller a fresh daily quota for the rest of the day. The store
/// is a stand-in here: only its usage read is used, and it must fail first and answer later.
/// </summary>
public sealed class QuotaSeedRetryTests
{
    [Fact]
    public async Task Usage_of_the_day_unread_at_start_is_read_once_the_store_answers()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero));
        var quotas = Options.Create(new QuotaOptions { User = new QuotaLimits { TokensPerDay = 1_000 }, RefreshInterval = TimeSpan.FromSeconds(5) });
        var teams = new Appliance.Host.Audit.CallerTeam(Options.Create(new AuditOptions()), quotas, Options.Create(new PoolOptions()),
            Microsoft.Extensions.Logging.Abstractions.NullLogger<Appliance.Host.Audit.CallerTeam>.Instance);
        var ledger = new QuotaLedger(quotas, teams, new Refusals(), time);
        var store = FlakyUsageStore.Create();
        var logs = new ListLogger();
        using var refresher = new QuotaRefresher(ledger, new Reader(store), Options.Create(new AuditOptions()), quotas, time,
            new TypedLogger<QuotaRefresher>(logs));

        await refresher.StartAsync(CancellationToken.None); // the store does not answer
        Assert.DoesNotContain(ledger.Standings(), s => s.Who == "ada");
        Assert.Contains(logs.Entries, e => e.EventId.Id == 5100);

        ((FlakyUsageStore)(object)store).Answers = true;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!ledger.Standings().Any(s => s.Who == "ada") && DateTime.UtcNow < deadline)
        {
            time.Advance(TimeSpan.FromSeconds(5));
            await Task.Delay(50);
        }

        var ada = Assert.Single(ledger.Standings(), s => s.Scope == "user" && s.Who == "ada");
        Assert.Equal(900, ada.TokensToday); // what the store held for the day before the start
        Assert.Contains(logs.Entries, e => e.EventId.Id == 5101);
        await refresher.StopAsync(CancellationToken.None);
    }

    private sealed class Refusals : IQuotaRefusals
    {
        public void QuotaRefused(string quota, string scope)
        {
        }
    }

    private sealed class Reader(IAuditStore store) : IAuditReader
    {
        public string Node => "node-a";

        public IAuditStore Store => store;

        public Appliance.Audit.Cluster.ClusterAuditView Chains => throw new NotSupportedException();

        public string PublicKeyPem => throw new NotSupportedException();

        public Appliance.Audit.Content.ContentVault Vault => throw new NotSupportedException();
    }

    /// <summary>Answers only the usage read: fails (as a database that does not answer) until told to answer.</summary>
    public class FlakyUsageStore : DispatchProxy
    {
        public bool Answers { get; set; }

        public static IAuditStore Create() => Create<IAuditStore, FlakyUsageStore>();

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            if (targetMethod?.Name != nameof(IAuditStore.Consumption))
            {
                throw new NotSupportedException(targetMethod?.Name);
            }

            return Answers
                ? new List<ConsumptionRow> { new("ada", null, 3, 900) }
                : throw new TimeoutException("the audit store does not answer");
        }
    }

    private sealed class TypedLogger<T>(ListLogger inner) : Microsoft.Extensions.Logging.ILogger<T>
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception,
            Func<TState, Exception?, string> formatter) => inner.Log(logLevel, eventId, state, exception, formatter);
    }
}
