namespace Appliance.Api.Guardrails;

/// <summary>
/// What the guardrails did to one request (rules and counts, never the text they matched), for its audit record. The
/// output side counts from the engine's thread while the request's own thread may read it, hence the lock.
/// </summary>
public sealed class GuardrailTally
{
    private readonly Lock _gate = new();
    private readonly List<(string Direction, GuardrailAction Action, string Rule, int Count)> _entries = [];

    public void Add(string direction, GuardrailAction action, string rule)
    {
        lock (_gate)
        {
            var at = _entries.FindIndex(e => e.Direction == direction && e.Action == action && e.Rule == rule);
            if (at < 0)
            {
                _entries.Add((direction, action, rule, 1));
            }
            else
            {
                _entries[at] = _entries[at] with { Count = _entries[at].Count + 1 };
            }
        }
    }

    /// <summary>For the audit record's detail, e.g. "guardrails: input masked emails x2, output blocked cards"; null when none acted.</summary>
    public string? Detail
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count == 0 ? null : "guardrails: " + string.Join(", ", _entries.Select(e =>
                    $"{e.Direction} {(e.Action == GuardrailAction.Block ? "blocked" : "masked")} {e.Rule}{(e.Count > 1 ? $" x{e.Count}" : string.Empty)}"));
            }
        }
    }
}

/// <summary>Told of every intervention (the host counts them in its metrics).</summary>
public interface IGuardrailObserver
{
    void Intervened(string rule, string direction, GuardrailAction action);
}
