using Appliance.Audit.Pricing;
using System.Diagnostics.Metrics;
using Appliance.Api.Admin;
using Appliance.Api.Audit;
using Appliance.Api.Models;

namespace Appliance.Host.Metrics;

/// <summary>
/// The appliance's instruments on System.Diagnostics.Metrics (vendor-neutral; /metrics exposes them through
/// prometheus-net's meter adapter): latencies and token counts per model, request outcomes, and the engines' and
/// devices' state as observable gauges.
/// </summary>
internal sealed class ApplianceMetrics : Quotas.IQuotaRefusals, IDisposable
{
    public const string MeterName = "Appliance";

    private readonly Meter _meter = new(MeterName);
    private readonly Histogram<double> _timeToFirstToken;
    private readonly Histogram<double> _interTokenLatency;
    private readonly Histogram<double> _requestDuration;
    private readonly Histogram<double> _queueTime;
    private readonly Counter<long> _promptTokens;
    private readonly Counter<long> _generatedTokens;
    private readonly Counter<long> _requests;
    private readonly Counter<long> _quotaRejections;
    private readonly Counter<double>? _cost;
    private readonly PriceList _prices;

    // Label values callers decide (their team or user name, a model name they typed) are bounded.
    private readonly BoundedLabelValues _tenantLabels = new(100);
    private readonly BoundedLabelValues _modelLabels = new(100);
    private readonly BoundedLabelValues _outcomeLabels = new(50);

    public ApplianceMetrics(IModelAdministration models, NodeDevices devices, DrainGate drain, Identity.UnauthenticatedFloodGuard flood,
        IServiceProvider services, Microsoft.Extensions.Options.IOptions<Options.AuditOptions> audit)
    {
        _timeToFirstToken = _meter.CreateHistogram<double>("time_to_first_token_seconds", "s", "Time from arrival to the first generated text");
        _interTokenLatency = _meter.CreateHistogram<double>("inter_token_latency_seconds", "s", "Mean time between generated tokens of a request");
        _requestDuration = _meter.CreateHistogram<double>("request_duration_seconds", "s", "End-to-end duration of model requests");
        _queueTime = _meter.CreateHistogram<double>("queue_time_seconds", "s", "Time a request waited before its prefill began");
        _promptTokens = _meter.CreateCounter<long>("prompt_tokens_total", "tokens", "Prompt tokens of completed requests");
        _generatedTokens = _meter.CreateCounter<long>("generated_tokens_total", "tokens", "Generated tokens of completed requests");
        _requests = _meter.CreateCounter<long>("requests_total", "requests", "Model requests by outcome (finish reason, or the refusal's error code) and tenant");
        _quotaRejections = _meter.CreateCounter<long>("quota_rejections_total", "requests", "Requests refused because a user or team quota was used up");
        _prices = services.GetRequiredService<PriceList>();
        if (_prices.Currency is not null)
        {
            // For budget alerts in Prometheus (increase over a month per tenant); the reports stay the figures to bill by.
            _cost = _meter.CreateCounter<double>("cost_total", description: "What completed requests cost at their model's rate (Pricing), by model, tenant and currency");
        }

        _meter.CreateObservableGauge("running_requests", () => Replicas(models, r => r.Running), "requests", "Requests running in each replica's engine");
        _meter.CreateObservableGauge("waiting_requests", () => Replicas(models, r => r.Queued), "requests", "Requests waiting for each replica's engine");
        _meter.CreateObservableGauge("kv_cache_used_tokens", () => Replicas(models, r => r.KvCacheUsedTokens), "tokens", "KV cache reserved by running requests");
        _meter.CreateObservableGauge("kv_cache_capacity_tokens", () => Replicas(models, r => r.KvCacheCapacityTokens), "tokens", "KV cache of each replica");
        _meter.CreateObservableCounter("preemptions_total", () => Replicas(models, r => r.Preemptions), "requests", "Running requests sent back to the queue to let another tenant in");
        _meter.CreateObservableCounter("prefix_cache_lookup_tokens_total", () => Replicas(models, r => r.PrefixCache.LookupTokens), "tokens",
            "Prompt tokens looked up in the prefix cache at admission");
        _meter.CreateObservableCounter("prefix_cache_hit_tokens_total", () => Replicas(models, r => r.PrefixCache.HitTokens), "tokens",
            "Prompt tokens found in the prefix cache (hit rate: this over prefix_cache_lookup_tokens_total)");
        _meter.CreateObservableCounter("speculative_drafted_tokens_total", () => Replicas(models, r => r.SpeculativeTokens.Drafted), "tokens",
            "Tokens proposed by prompt lookup for speculative decoding");
        _meter.CreateObservableCounter("speculative_accepted_tokens_total", () => Replicas(models, r => r.SpeculativeTokens.Accepted), "tokens",
            "Drafted tokens the model confirmed (each saves one decoding step)");
        _meter.CreateObservableCounter("rotary_split_steps_total", () => Replicas(models, r => r.SplitSteps), "steps",
            "Steps of a LongRoPE model run in two because their requests lay on both sides of its rotary switch (exact answers, two weight passes)");
        _meter.CreateObservableGauge("replica_healthy", () => Replicas(models, r => r.Healthy ? 1 : 0), description: "0 after a replica's model run failed (until one succeeds, 10 s at most), and while its crashed engine restarts");
        _meter.CreateObservableCounter("engine_restarts_total", () => Replicas(models, r => r.Restarts), "restarts", "Times a replica's engine loop crashed and was restarted");
        _meter.CreateObservableGauge("device_memory_total_bytes", () => devices.Devices.Select(d =>
            new Measurement<long>(d.MemoryTotalBytes, new KeyValuePair<string, object?>("device", d.Id))), "bytes", "Memory of each device at discovery");
        _meter.CreateObservableGauge("draining", () => drain.Draining ? 1 : 0, description: "1 while the node is draining");
        _meter.CreateObservableCounter("unauthenticated_throttled_total", () => flood.ThrottledTotal, "requests",
            "Requests without valid credentials from an address over Identity:UnauthenticatedPerMinute: refused at once or not audited one by one");
        if (audit.Value.Enabled)
        {
            // Resolved on the first scrape: the log is opened at start-up anyway, after the metrics are set up. A scrape
            // while it cannot be opened fails, and the next one tries again (a cached exception would fail them all).
            var log = new Lazy<Appliance.Audit.AuditLog>(services.GetRequiredService<Appliance.Audit.AuditLog>, LazyThreadSafetyMode.PublicationOnly);
            var forwarder = new Lazy<Audit.SyslogForwarder?>(() => services.GetService<Audit.SyslogForwarder>(), LazyThreadSafetyMode.PublicationOnly);
            KeyValuePair<string, object?> Node() => new("node", log.Value.Node);
            _meter.CreateObservableCounter("audit_entries_total", () => new Measurement<long>(log.Value.LastSequence, Node()), "entries",
                "Entries of this node's audit chain (its last sequence number)");
            _meter.CreateObservableGauge("audit_failing", () => new Measurement<int>(log.Value.Failing is null ? 0 : 1, Node()),
                description: "1 while the audit store cannot be written (requests are refused and the node reports not ready)");
            _meter.CreateObservableGauge("audit_syslog_pending_entries",
                () => forwarder.Value?.Pending is { } pending ? [new Measurement<long>(pending, Node())] : Array.Empty<Measurement<long>>(), "entries",
                "Audit entries written but not yet delivered to the SIEM (Audit:Syslog:Target)");
            _meter.CreateObservableGauge("audit_syslog_unreachable",
                () => forwarder.Value is { } f ? [new Measurement<int>(f.Unreachable ? 1 : 0, Node())] : Array.Empty<Measurement<int>>(),
                description: "1 while the SIEM cannot be reached or refuses entries");
        }
    }

    /// <summary>Records a finished /v1 request from what its audit state learned.</summary>
    public void Record(RequestAudit audit, int status, string tenant, TimeProvider time)
    {
        if (audit.Model is not { } model)
        {
            return;
        }

        // A model name that matched nothing is the caller's text: one label for all of them.
        var modelTag = new KeyValuePair<string, object?>("model", audit.ErrorCode == "model_not_found" ? "unknown" : _modelLabels.Of(model));
        var outcome = status >= 400 ? audit.ErrorCode ?? status.ToString(System.Globalization.CultureInfo.InvariantCulture)
            : audit.TokenizerOnly ? "tokenized" : audit.FinishReason ?? "ok";
        _requests.Add(1, modelTag, new KeyValuePair<string, object?>("outcome", _outcomeLabels.Of(outcome)), new KeyValuePair<string, object?>("tenant", _tenantLabels.Of(tenant)));
        if ((!audit.Accepted && status >= 400) || audit.TokenizerOnly) // counting text is no model request to time
        {
            return;
        }

        var duration = time.GetElapsedTime(audit.StartedAt).TotalSeconds;
        _requestDuration.Record(duration, modelTag);
        if (audit.QueueMs is { } queue)
        {
            _queueTime.Record(queue / 1000, modelTag);
        }

        if (audit.FirstTokenAt is { } first)
        {
            var ttft = time.GetElapsedTime(audit.StartedAt, first).TotalSeconds;
            _timeToFirstToken.Record(ttft, modelTag);
            if (audit.CompletionTokens is > 1 and var tokens)
            {
                _interTokenLatency.Record((duration - ttft) / (tokens - 1), modelTag);
            }
        }

        _promptTokens.Add(audit.PromptTokens ?? 0, modelTag);
        _generatedTokens.Add(audit.CompletionTokens ?? 0, modelTag);
        if (_cost is not null && _prices.Cost(model, DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime), audit.PromptTokens ?? 0, audit.CompletionTokens ?? 0) is { } cost)
        {
            _cost.Add((double)cost, modelTag, new KeyValuePair<string, object?>("tenant", _tenantLabels.Of(tenant)),
                new KeyValuePair<string, object?>("currency", _prices.Currency));
        }
    }

    public void QuotaRefused(string quota, string scope) =>
        _quotaRejections.Add(1, new KeyValuePair<string, object?>("quota", quota), new KeyValuePair<string, object?>("scope", scope));

    public void Dispose() => _meter.Dispose();

    private static IEnumerable<Measurement<long>> Replicas(IModelAdministration models, Func<ReplicaState, long> read) =>
        models.Replicas.Select(r => new Measurement<long>(
            read(r), new KeyValuePair<string, object?>("model", r.Model), new KeyValuePair<string, object?>("device", r.DeviceId)));
}
