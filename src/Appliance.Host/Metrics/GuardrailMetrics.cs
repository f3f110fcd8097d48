using System.Diagnostics.Metrics;
using Appliance.Api.Guardrails;

namespace Appliance.Host.Metrics;

/// <summary>Counts what the guardrails did, for alerts (a burst of blocked inputs may be someone probing).</summary>
internal sealed class GuardrailMetrics : IGuardrailObserver, IDisposable
{
    private readonly Meter _meter = new(ApplianceMetrics.MeterName);
    private readonly Counter<long> _interventions;

    public GuardrailMetrics() =>
        _interventions = _meter.CreateCounter<long>("guardrail_interventions_total", "matches",
            "Matches the guardrails masked or blocked, by rule, direction (input, output) and action (block, mask)");

    // Rule names come from the settings, so the label values are bounded.
    public void Intervened(string rule, string direction, GuardrailAction action) => _interventions.Add(1,
        new KeyValuePair<string, object?>("rule", rule),
        new KeyValuePair<string, object?>("direction", direction),
        new KeyValuePair<string, object?>("action", action == GuardrailAction.Block ? "block" : "mask"));

    public void Dispose() => _meter.Dispose();
}
