using System.Collections.Concurrent;

namespace Appliance.Host.Metrics;

/// <summary>
/// Keeps a metric label's distinct values bounded: the first <paramref name="limit"/> values seen are reported as
/// themselves, any later one as "other". Prometheus keeps one series per value for the process's life, so a label
/// fed by callers (a tenant per user, a model name a client made up) must not grow without end.
/// </summary>
internal sealed class BoundedLabelValues(int limit)
{
    public const string Other = "other";

    private readonly ConcurrentDictionary<string, bool> _seen = new(StringComparer.Ordinal);

    public string Of(string value)
    {
        if (_seen.ContainsKey(value))
        {
            return value;
        }

        // Racing adds may let a few past the limit; the bound still holds within the number of threads.
        if (_seen.Count < limit && _seen.TryAdd(value, true))
        {
            return value;
        }

        return _seen.ContainsKey(value) ? value : Other;
    }
}
