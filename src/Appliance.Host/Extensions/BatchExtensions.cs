using Appliance.Api.Batches;
using Appliance.Host.Batches;
using Appliance.Host.Options;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Extensions;

/// <summary>
/// The Batch API (/v1/files, /v1/batches): its store beside the audit log (SQLite, or the cluster's PostgreSQL), the
/// runner every node has, and the in-process door through which a batch's requests enter the pipeline.
/// </summary>
public static class BatchExtensions
{
    public static WebApplicationBuilder AddApplianceBatches(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<BatchOptions>().Bind(builder.Configuration.GetSection(BatchOptions.Section)).ValidateOnStart()
            .Validate(o => o.MaxFileBytes is >= 1024 and <= 1_000_000_000, "Batches:MaxFileBytes must be between 1024 and 1000000000 (what one stored value holds)")
            .Validate(o => o.MaxOpenPerOwner >= 1, "Batches:MaxOpenPerOwner must be at least 1")
            .Validate(o => o.TimeSlice >= TimeSpan.FromSeconds(1), "Batches:TimeSlice must be at least one second")
            .Validate(o => o.MaxRequests is >= 1 and <= 1_000_000, "Batches:MaxRequests must be between 1 and 1000000")
            .Validate(o => o.Concurrency is >= 1 and <= 256, "Batches:Concurrency must be between 1 and 256")
            .Validate(o => o.PollInterval >= TimeSpan.FromMilliseconds(50), "Batches:PollInterval must be at least 50 ms")
            .Validate(o => o.LeaseDuration >= TimeSpan.FromSeconds(3) && o.LeaseDuration >= o.PollInterval * 3,
                "Batches:LeaseDuration must be at least 3 seconds and three times Batches:PollInterval")
            .Validate(o => o.RetentionDays >= 0, "Batches:RetentionDays must be 0 (keep) or more");

        var settings = builder.Configuration.GetSection(BatchOptions.Section).Get<BatchOptions>() ?? new BatchOptions();
        if (!settings.Enabled)
        {
            return builder;
        }

        builder.Services.AddSingleton<IBatchStore>(StoreFor);
        if (settings.Run)
        {
            // Every request, a batch's too, goes through the server the host runs (Kestrel): wrapped, it also takes
            // requests from inside the process.
            var network = builder.Services.LastOrDefault(d => d.ServiceType == typeof(IServer) && !d.IsKeyedService)
                ?? throw new InvalidOperationException("no server is registered to run batches through");
            builder.Services.Remove(network);
            builder.Services.Add(Keyed(network));
            builder.Services.AddSingleton(services => new InProcessServer(services.GetRequiredKeyedService<IServer>(NetworkServer)));
            builder.Services.AddSingleton<IServer>(services => services.GetRequiredService<InProcessServer>());
            builder.Services.AddSingleton<InProcessRequests>();
            builder.Services.AddSingleton<BatchMetrics>();
            builder.Services.AddHostedService<BatchRunner>();
        }

        return builder;
    }

    private const string NetworkServer = "network";

    private static ServiceDescriptor Keyed(ServiceDescriptor network) =>
        network.ImplementationType is { } type ? new ServiceDescriptor(typeof(IServer), NetworkServer, type, network.Lifetime)
        : network.ImplementationInstance is { } instance ? new ServiceDescriptor(typeof(IServer), NetworkServer, instance)
        : new ServiceDescriptor(typeof(IServer), NetworkServer, (services, _) => network.ImplementationFactory!(services), network.Lifetime);

    /// <summary>Beside the audit log: the cluster's PostgreSQL when the audit store is PostgreSQL, else a SQLite file.</summary>
    private static IBatchStore StoreFor(IServiceProvider services)
    {
        var audit = services.GetRequiredService<IOptions<AuditOptions>>().Value;
        return audit.Store == "postgresql"
            ? new PostgresBatchStore(audit.PostgresConnectionString)
            : new SqliteBatchStore(Path.Combine(services.GetRequiredService<IOptions<ApplianceOptions>>().Value.DataFolder, "batches", "batches.db"));
    }
}
