using Appliance.Audit.Chain;

namespace Appliance.Audit.Tests;

/// <summary>
/// Online verification checks only what follows the last signed checkpoint an earlier call verified; a full one
/// rehashes everything. Both find damage in what they check.
/// </summary>
public sealed class IncrementalVerifierTests
{
    [Fact]
    public async Task A_second_verification_checks_only_the_entries_after_the_last_verified_checkpoint()
    {
        await using var audit = new AuditChainFixture(new AuditLogOptions { CheckpointEvery = 10, MaxBatch = 1 });
        await Record(audit, 1, 40);
        var verifier = new IncrementalVerifier();
        using var key = audit.PublicKey();

        var first = verifier.Verify(audit.Store, "node-1", key, full: false);
        Assert.True(first.Ok, first.Message);
        Assert.Equal(40, first.EntriesChecked);
        Assert.Null(first.From);

        await Record(audit, 41, 55);
        var second = verifier.Verify(audit.Store, "node-1", key, full: false);
        Assert.True(second.Ok, second.Message);
        Assert.Equal(40, second.From?.Sequence);
        Assert.Equal(15, second.EntriesChecked);

        // A new entry that does not chain to the verified checkpoint is found by the incremental check.
        audit.Tamper("UPDATE audit_entries SET prev_hash = 'x' || prev_hash WHERE seq = 51");
        var broken = verifier.Verify(audit.Store, "node-1", key, full: false);
        Assert.False(broken.Ok);
        Assert.Equal(51, broken.FirstBrokenSequence);
    }

    [Fact]
    public async Task A_row_changed_before_the_verified_checkpoint_takes_a_full_verification()
    {
        await using var audit = new AuditChainFixture(new AuditLogOptions { CheckpointEvery = 10, MaxBatch = 1 });
        await Record(audit, 1, 30);
        var verifier = new IncrementalVerifier();
        using var key = audit.PublicKey();
        Assert.True(verifier.Verify(audit.Store, "node-1", key, full: false).Ok);

        audit.Tamper("UPDATE audit_entries SET completion_tokens = 1 WHERE seq = 7");

        Assert.True(verifier.Verify(audit.Store, "node-1", key, full: false).Ok); // not rescanned: the documented limit
        var full = verifier.Verify(audit.Store, "node-1", key, full: true);
        Assert.False(full.Ok);
        Assert.Equal((ChainProblem.Modified, 7L), (full.Problem, full.FirstBrokenSequence));
    }

    [Fact]
    public async Task A_retention_run_that_commits_while_the_chain_is_read_is_no_deletion()
    {
        await using var audit = new AuditChainFixture(new AuditLogOptions { CheckpointEvery = 10, MaxBatch = 1 });
        var start = DateTimeOffset.UtcNow.AddHours(-1);
        foreach (var i in Enumerable.Range(1, 40))
        {
            await audit.Log.RecordAsync(AuditChainFixture.Record(i) with { Time = start.AddMinutes(i) });
        }

        await audit.CloseLogAsync();
        using var key = audit.PublicKey();
        // Retention commits after the verifier read the (absent) retention record and before it reads the entries.
        var store = new RetentionWhileReading(audit.Store, () => AuditRetention.Apply(audit.Store, audit.Signer, "node-1", start.AddMinutes(25.5), DateTimeOffset.UtcNow));

        var verdict = new IncrementalVerifier().Verify(store, "node-1", key, full: true);

        Assert.True(verdict.Ok, verdict.Message);
        Assert.Equal(20, verdict.EntriesChecked); // 21 to 40, after the retention record
        audit.Tamper("DELETE FROM audit_entries WHERE seq = 30"); // a real cut is still found
        Assert.Equal(ChainProblem.Deleted, new IncrementalVerifier().Verify(audit.Store, "node-1", key, full: true).Problem);
    }

    /// <summary>A store on which a retention run commits once, the first time a chain is read.</summary>
    private sealed class RetentionWhileReading(Stores.IAuditStore inner, Action retention) : Stores.IAuditStore
    {
        private Action? _retention = retention;

        public string Name => inner.Name;

        public IEnumerable<AuditEntry> Chain(string node, long afterSequence = 0)
        {
            Interlocked.Exchange(ref _retention, null)?.Invoke();
            return inner.Chain(node, afterSequence);
        }

        public (long Sequence, string Hash)? Head(string node) => inner.Head(node);

        public void Append(IReadOnlyList<AuditEntry> entries, Checkpoint? checkpoint) => inner.Append(entries, checkpoint);

        public IReadOnlyList<AuditEntry> Query(string node, Stores.AuditQuery query) => inner.Query(node, query);

        public IReadOnlyList<Checkpoint> Checkpoints(string node) => inner.Checkpoints(node);

        public DateTimeOffset? NewestTime(string node, long afterSequence, long throughSequence) => inner.NewestTime(node, afterSequence, throughSequence);

        public AuditEntry? LatestWitness(string node, long throughSequence) => inner.LatestWitness(node, throughSequence);

        public IReadOnlyList<Checkpoint> LatestCheckpoints() => inner.LatestCheckpoints();

        public RetentionRecord? Retention(string node) => inner.Retention(node);

        public void ApplyRetention(RetentionRecord record) => inner.ApplyRetention(record);

        public IReadOnlyList<Stores.UsageRow> Usage(string? node, DateTimeOffset from, DateTimeOffset to, string groupBy, IReadOnlyList<string>? teams = null, string? user = null) =>
            inner.Usage(node, from, to, groupBy, teams, user);

        public IReadOnlyList<Stores.ConsumptionRow> Consumption(DateTimeOffset since, string? onlyNode, string? exceptNode, DateTimeOffset? before = null) => inner.Consumption(since, onlyNode, exceptNode, before);

        public IReadOnlyList<string> Nodes() => inner.Nodes();

        public void Dispose()
        {
        }
    }

    private static async Task Record(AuditChainFixture audit, int first, int last)
    {
        foreach (var i in Enumerable.Range(first, last - first + 1))
        {
            await audit.Log.RecordAsync(AuditChainFixture.Record(i));
        }
    }
}
