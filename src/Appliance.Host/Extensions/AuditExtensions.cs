using Appliance.Audit.Pricing;
using Appliance.Api.Audit;
using Appliance.Audit;
using Appliance.Audit.Chain;
using Appliance.Audit.Stores;
using Appliance.Host.Audit;
using Appliance.Host.Options;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Extensions;

/// <summary>The audit log: its store, checkpoint key and writer, the middleware that records every request, and /audit.</summary>
public static partial class AuditExtensions
{
    public static WebApplicationBuilder AddApplianceAudit(this WebApplicationBuilder builder)
    {
        var development = builder.Environment.IsDevelopment();
        builder.Services.AddOptions<AuditOptions>().Bind(builder.Configuration.GetSection(AuditOptions.Section)).ValidateOnStart()
            .Validate(o => o.Enabled || development, "Audit:Enabled=false is allowed in the Development environment only (to measure what auditing costs)")
            .Validate(o => o.Store is "sqlite" or "postgresql", "Audit:Store must be sqlite or postgresql")
            .Validate(o => o.Store != "postgresql" || !string.IsNullOrWhiteSpace(o.PostgresConnectionString),
                "Audit:PostgresConnectionString is required when Audit:Store is postgresql")
            .Validate(o => o.CheckpointEvery >= 1, "Audit:CheckpointEvery must be at least 1")
            .Validate(o => o.CheckpointInterval >= TimeSpan.FromSeconds(1), "Audit:CheckpointInterval must be at least one second")
            .Validate(o => o.MaxBatch is >= 1 and <= 10_000, "Audit:MaxBatch must be between 1 and 10000")
            .Validate(o => o.MaxSizeBytes is null or >= 65_536, "Audit:MaxSizeBytes must be at least 65536")
            .Validate(o => o.MaxSizeBytes is null || o.Store != "postgresql",
                "Audit:MaxSizeBytes caps the SQLite file only; with postgresql leave it unset, size the database's storage and alert on audit_failing")
            .Validate(o => o.Syslog.Target.Length == 0 || (Uri.TryCreate(o.Syslog.Target, UriKind.Absolute, out var target) && target.Scheme is "relp" or "tcp" or "udp" && target.Port > 0),
                "Audit:Syslog:Target must be relp://host:port, tcp://host:port or udp://host:port")
            .Validate(o => o.Retention is null || o.Retention >= TimeSpan.FromSeconds(1), "Audit:Retention must be at least one second (or unset to keep everything)")
            .Validate(o => o.RetentionCheckInterval >= TimeSpan.FromMilliseconds(100), "Audit:RetentionCheckInterval must be at least 100 ms")
            .Validate(o => o.NodeLockCheckInterval >= TimeSpan.FromMilliseconds(100), "Audit:NodeLockCheckInterval must be at least 100 ms")
            .Validate(o => o.ContentKeyScope is "model" or "classification", "Audit:ContentKeyScope must be model or classification")
            .Validate(o => o.Syslog.PollInterval >= TimeSpan.FromMilliseconds(50), "Audit:Syslog:PollInterval must be at least 50 ms")
            .Validate(o => o.Syslog.AnswerTimeout >= TimeSpan.FromSeconds(1), "Audit:Syslog:AnswerTimeout must be at least one second");
        builder.Services.AddSingleton<IAuditStore>(services =>
        {
            var options = services.GetRequiredService<IOptions<AuditOptions>>().Value;
            return options.Store == "postgresql"
                ? new PostgresAuditStore(options.PostgresConnectionString, lockNode: NodeId(options), options.NodeLockCheckInterval, services.GetRequiredService<ILogger<PostgresAuditStore>>())
                : new SqliteAuditStore(Resolve(services, options.SqlitePath, "audit.db"), options.MaxSizeBytes);
        });
        builder.Services.AddSingleton(CheckpointKey);
        builder.Services.AddSingleton(services =>
        {
            var options = services.GetRequiredService<IOptions<AuditOptions>>().Value;
            return new AuditLog(services.GetRequiredService<IAuditStore>(), services.GetRequiredService<CheckpointSigner>(),
                NodeId(options),
                services.GetRequiredService<TimeProvider>(),
                new AuditLogOptions { CheckpointEvery = options.CheckpointEvery, CheckpointInterval = options.CheckpointInterval, MaxBatch = options.MaxBatch },
                services.GetRequiredService<ILogger<AuditLog>>());
        });
        builder.Services.AddSingleton(services => new Appliance.Audit.Content.ContentVault(
            Resolve(services, services.GetRequiredService<IOptions<AuditOptions>>().Value.ContentKeysFolder, "content-keys")));
        builder.Services.AddSingleton<IContentRecording, ContentRecording>();
        builder.Services.AddSingleton<AuditRecords>();
        builder.Services.AddSingleton<CallerTeam>();
        builder.Services.AddSingleton<Appliance.Audit.Chain.IncrementalVerifier>();
        builder.Services.AddSingleton<IAuditReader, AuditReader>();
        builder.Services.AddOptions<PricingOptions>().Bind(builder.Configuration.GetSection(PricingOptions.Section)).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<PricingOptions>, PricingOptionsValidator>();
        builder.Services.AddSingleton(services => new PriceList(services.GetRequiredService<IOptions<PricingOptions>>().Value));
        if (IsEnabled(builder.Configuration))
        {
            builder.Services.AddSingleton<IAccessRecorder, AccessRecorder>();
            if (!string.IsNullOrWhiteSpace(builder.Configuration[$"{AuditOptions.Section}:Syslog:Target"]))
            {
                builder.Services.AddSingleton<SyslogForwarder>();
                builder.Services.AddHostedService(services => services.GetRequiredService<SyslogForwarder>());
            }

            if (!string.IsNullOrWhiteSpace(builder.Configuration[$"{AuditOptions.Section}:Retention"]))
            {
                builder.Services.AddHostedService<RetentionService>();
            }
        }
        else
        {
            builder.Services.AddSingleton<IAccessRecorder, UnauditedRecorder>();
        }

        return builder;
    }

    /// <summary>Maps /audit for auditors when auditing is on.</summary>
    public static WebApplication MapApplianceAudit(this WebApplication app, string policy)
    {
        if (IsEnabled(app.Configuration))
        {
            app.MapAuditApi().RequireAuthorization(policy);
        }

        return app;
    }

    /// <summary>Before authentication, so that refused credentials are recorded too.</summary>
    public static WebApplication UseApplianceAudit(this WebApplication app)
    {
        PricingCheck.WarnAtStart(app);
        if (!IsEnabled(app.Configuration))
        {
            app.Lifetime.ApplicationStarted.Register(() => LogAuditDisabled(app.Logger));
            return app;
        }

        app.Services.GetRequiredService<AuditLog>(); // open the store at start: a broken store stops start-up, not the first request
        if (app.Services.GetRequiredService<IAuditStore>() is SqliteAuditStore { SkippedIndex: { } skipped })
        {
            LogIndexSkipped(app.Logger, skipped);
        }
        app.UseMiddleware<AuditMiddleware>();
        return app;
    }

    /// <summary>
    /// The key that signs this node's checkpoints, created with the first chain. A chain already signed whose key file
    /// is missing (left out of a backup: only the service can read it) stops the start: a new key would make every
    /// checkpoint before it read as forged, and would overwrite the public key auditors check them with. A key other
    /// than the chain's is allowed (moving a cluster to one shared key does that) but said, since the checkpoints
    /// before it verify only with the old public key.
    /// </summary>
    private static CheckpointSigner CheckpointKey(IServiceProvider services)
    {
        var options = services.GetRequiredService<IOptions<AuditOptions>>().Value;
        var path = Resolve(services, options.CheckpointKeyPath, "checkpoint-key.pem");
        var node = NodeId(options);
        // The newest signed statement of the chain: its latest checkpoint, or, once retention removed them all (a node
        // idle for the whole period), the retention record the chain goes on from.
        var store = services.GetRequiredService<IAuditStore>();
        (string KeyId, long Sequence)? signed = store.LatestCheckpoints().FirstOrDefault(c => c.Node == node) is { } latest ? (latest.KeyId, latest.Sequence)
            : store.Retention(node) is { } retained ? (retained.KeyId, retained.ThroughSequence)
            : null;
        if (signed is { } chainKey && !File.Exists(path))
        {
            throw new SettingsException($"Audit: the checkpoint key {path} is missing, yet the chain of node '{node}' is signed with key {chainKey.KeyId} "
                + $"(through entry {chainKey.Sequence}): restore it and {Path.GetFileName(CheckpointSigner.PublicKeyPath(path))} from the backup "
                + "(Audit:CheckpointKeyPath names where it is read); to begin a new chain on purpose, give the node a new Audit:NodeId (the old chain stays, "
                + "verifiable with its own public key)");
        }

        var signer = CheckpointSigner.LoadOrCreate(path);
        if (signed is { } other && other.KeyId != signer.KeyId)
        {
            // Once started: the key is read while the node is put together, before every log provider is attached.
            var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(AuditExtensions).FullName!);
            services.GetRequiredService<IHostApplicationLifetime>().ApplicationStarted.Register(() =>
                LogOtherCheckpointKey(logger, path, signer.KeyId, node, other.KeyId, other.Sequence));
        }

        return signer;
    }

    private static string NodeId(AuditOptions options) => string.IsNullOrWhiteSpace(options.NodeId) ? Environment.MachineName : options.NodeId;

    private static bool IsEnabled(IConfiguration configuration) =>
        configuration.GetSection(AuditOptions.Section).Get<AuditOptions>()?.Enabled ?? true;

    private static string Resolve(IServiceProvider services, string configured, string fileName) =>
        string.IsNullOrWhiteSpace(configured)
            ? Path.Combine(services.GetRequiredService<IOptions<ApplianceOptions>>().Value.DataFolder, "audit", fileName)
            : configured;

    [LoggerMessage(EventId = 4006, Level = LogLevel.Warning,
        Message = "The audit checkpoint key {Path} is key {KeyId}, but the chain of node {Node} was signed with key {ChainKeyId} through entry {Sequence}: the checkpoints before are verified with that key's public half only. Unless the key was changed on purpose (one shared key for a cluster), restore the chain's key")]
    private static partial void LogOtherCheckpointKey(ILogger logger, string path, string keyId, string node, string chainKeyId, long sequence);

    [LoggerMessage(EventId = 4063, Level = LogLevel.Warning, Message = "{Reason}")]
    private static partial void LogIndexSkipped(ILogger logger, string reason);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning, Message = "AUDIT DISABLED (Audit:Enabled=false): requests are served without audit records. Development only, for measuring what auditing costs.")]
    private static partial void LogAuditDisabled(ILogger logger);

    /// <summary>Accepts without recording: only with Audit:Enabled=false in Development.</summary>
    private sealed class UnauditedRecorder : IAccessRecorder
    {
        public Task<bool> TryAcceptAsync(HttpContext http) => Task.FromResult(true);
    }
}
