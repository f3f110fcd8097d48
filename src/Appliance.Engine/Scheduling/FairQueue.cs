namespace Appliance.Engine.Scheduling;

/// <summary>
/// Waiting sequences of one priority class, one FIFO per tenant, served by weighted fair queueing: the next sequence
/// comes from the tenant with the least weighted service (tokens prefilled and decoded, divided by its weight). A
/// tenant that was idle starts at the current virtual time, so idling earns no credit and a flood by one tenant delays
/// another's request by about one admission, not by the flood's length.
/// </summary>
internal sealed class FairQueue(Func<string, double> weightOf)
{
    private const int PruneAbove = 64;

    /// <summary>An idle tenant is forgotten after this many admissions of others, even if it is ahead of the clock.</summary>
    private const long ForgetAfterArrivals = 256;

    private readonly Dictionary<string, TenantState> _tenants = new(StringComparer.Ordinal);
    private double _virtualTime;
    private long _arrivals;
    private int _pruneAt = PruneAbove;

    public int Count { get; private set; }

    /// <summary>Tenants with state kept (for tests: it must not grow with every tenant ever seen).</summary>
    public int TenantCount => _tenants.Count;

    /// <summary>
    /// Forgets idle tenants (nothing waiting, nothing running, so no charge can come) whose state says nothing a fresh
    /// one would not (a virtual time the clock has passed), or that have been idle while many others were served (the
    /// service they were ahead by is forgiven). Runs when the table has doubled since the last pass, so the cost per
    /// admission stays constant and the table holds the tenants active lately, not every tenant ever seen.
    /// </summary>
    public void PruneIdle(Func<string, int> runningOf)
    {
        if (_tenants.Count <= _pruneAt)
        {
            return;
        }

        foreach (var idle in _tenants.Values.Where(t => t.Waiting.Count == 0 && runningOf(t.Name) == 0
            && (t.Virtual <= _virtualTime || _arrivals - t.LastArrival > ForgetAfterArrivals)).ToList())
        {
            _tenants.Remove(idle.Name);
        }

        _pruneAt = Math.Max(PruneAbove, _tenants.Count * 2);
    }

    public IEnumerable<Sequence> All => _tenants.Values.SelectMany(t => t.Waiting);

    public void Add(Sequence sequence)
    {
        var tenant = State(sequence.Request.Tenant);
        if (tenant.Waiting.Count == 0)
        {
            tenant.Virtual = Math.Max(tenant.Virtual, _virtualTime);
        }

        sequence.Arrival = _arrivals++;
        tenant.LastArrival = sequence.Arrival;
        tenant.Waiting.AddLast(sequence);
        Count++;
    }

    /// <summary>Puts a preempted sequence back at the head of its tenant's queue (it keeps its place among its own).</summary>
    public void Return(Sequence sequence)
    {
        State(sequence.Request.Tenant).Waiting.AddFirst(sequence);
        Count++;
    }

    /// <summary>
    /// The sequence to admit next: the head of the tenant with the lowest virtual time; ties go to the tenant with fewer
    /// sequences running, then to the earlier arrival.
    /// </summary>
    /// <param name="eligible">Passes over sequences that cannot start now (each tenant's first eligible one is its next).</param>
    public Sequence? Peek(Func<string, int> runningOf, Func<Sequence, bool>? eligible = null)
    {
        TenantState? best = null;
        Sequence? next = null;
        foreach (var tenant in _tenants.Values)
        {
            var first = eligible is null ? tenant.Waiting.First?.Value : tenant.Waiting.FirstOrDefault(eligible);
            if (first is null)
            {
                continue;
            }

            if (best is null || Before(tenant, best, runningOf))
            {
                (best, next) = (tenant, first);
            }
        }

        return next;
    }

    /// <summary>Takes out the sequence <see cref="Peek"/> returned; the virtual clock moves to its tenant's time.</summary>
    public void Remove(Sequence sequence)
    {
        var tenant = _tenants[sequence.Request.Tenant];
        tenant.Waiting.Remove(sequence);
        Count--;
        _virtualTime = Math.Max(_virtualTime, tenant.Virtual);
    }

    /// <summary>Charges work done for a tenant (prompt tokens at admission, each decoded token).</summary>
    public void Charge(string tenantName, int tokens)
    {
        var tenant = State(tenantName);
        tenant.Virtual += tokens / tenant.Weight;
    }

    /// <summary>Takes out every waiting sequence that matches; returns them.</summary>
    public List<Sequence> RemoveWhere(Func<Sequence, bool> match)
    {
        var removed = new List<Sequence>();
        foreach (var tenant in _tenants.Values)
        {
            for (var node = tenant.Waiting.First; node is not null;)
            {
                var next = node.Next;
                if (match(node.Value))
                {
                    tenant.Waiting.Remove(node);
                    removed.Add(node.Value);
                    Count--;
                }

                node = next;
            }
        }

        return removed;
    }

    /// <summary>A tenant's virtual time (for tests and the pool view).</summary>
    public double VirtualTimeOf(string tenant) => _tenants.TryGetValue(tenant, out var state) ? state.Virtual : _virtualTime;

    private static bool Before(TenantState candidate, TenantState best, Func<string, int> runningOf)
    {
        if (candidate.Virtual != best.Virtual)
        {
            return candidate.Virtual < best.Virtual;
        }

        var (runningCandidate, runningBest) = (runningOf(candidate.Name), runningOf(best.Name));
        return runningCandidate != runningBest
            ? runningCandidate < runningBest
            : candidate.Waiting.First!.Value.Arrival < best.Waiting.First!.Value.Arrival;
    }

    private TenantState State(string name)
    {
        if (!_tenants.TryGetValue(name, out var state))
        {
            state = new TenantState(name, Math.Max(weightOf(name), 0.001)) { Virtual = _virtualTime };
            _tenants[name] = state;
        }

        return state;
    }

    private sealed class TenantState(string name, double weight)
    {
        public string Name { get; } = name;

        public double Weight { get; } = weight;

        public double Virtual { get; set; }

        public long LastArrival { get; set; }

        public LinkedList<Sequence> Waiting { get; } = new();
    }
}
