using Appliance.Audit.Chain;

namespace Appliance.Audit.Tests;

/// <summary>Every kind of tampering with the stored chain is found, and the first broken entry is named.</summary>
public sealed class TamperDetectionTests
{
    [Fact]
    public async Task A_modified_field_is_found_at_its_entry()
    {
        await using var audit = await Filled();
        audit.Tamper("UPDATE audit_entries SET completion_tokens = 1 WHERE seq = 17");
        Expect(audit.Verify(), ChainProblem.Modified, 17);
    }

    [Fact]
    public async Task A_deleted_entry_is_found()
    {
        await using var audit = await Filled();
        audit.Tamper("DELETE FROM audit_entries WHERE seq = 12");
        Expect(audit.Verify(), ChainProblem.Deleted, 12);
    }

    [Fact]
    public async Task An_entry_inserted_by_renumbering_the_rest_is_found()
    {
        await using var audit = await Filled();
        var entries = audit.Store.Chain("node-1").ToList();
        // A well-formed entry 11 that links to entry 10; the old entries from 11 on are moved up by one.
        var record = entries[9].Record with { Username = "someone-else" };
        var forged = new AuditEntry(11, "node-1", record, entries[9].Hash, CanonicalJson.Hash(11, "node-1", record, entries[9].Hash));
        List<AuditEntry> tampered = [.. entries.Take(10), forged, .. entries.Skip(10).Select(e => e with { Sequence = e.Sequence + 1 })];
        Expect(ChainVerifier.Verify(tampered, audit.Store.Checkpoints("node-1"), audit.PublicKey()), ChainProblem.InsertedOrReordered, 12);
    }

    [Fact]
    public async Task Swapped_entries_are_found()
    {
        await using var audit = await Filled();
        var entries = audit.Store.Chain("node-1").ToList();
        (entries[4], entries[5]) = (entries[5] with { Sequence = 5 }, entries[4] with { Sequence = 6 });
        var verdict = ChainVerifier.Verify(entries, [], audit.PublicKey());
        Assert.False(verdict.Ok);
        Assert.Equal(5, verdict.FirstBrokenSequence);
    }

    [Fact]
    public async Task Cutting_off_the_end_is_found_by_the_checkpoint_that_vouched_for_it()
    {
        await using var audit = await Filled();
        audit.Tamper("DELETE FROM audit_entries WHERE seq > 35");
        Expect(audit.Verify(), ChainProblem.Truncated, 36);
    }

    [Fact]
    public async Task A_chain_rewritten_with_fresh_hashes_is_found_by_the_signed_checkpoints()
    {
        await using var audit = await Filled();
        var rewritten = new List<AuditEntry>();
        var previous = CanonicalJson.GenesisHash;
        foreach (var entry in audit.Store.Chain("node-1"))
        {
            var record = entry.Sequence == 3 ? entry.Record with { Status = 200, Kind = AuditKinds.Accepted } : entry.Record;
            var hash = CanonicalJson.Hash(entry.Sequence, entry.Node, record, previous);
            rewritten.Add(entry with { Record = record, PreviousHash = previous, Hash = hash });
            previous = hash;
        }

        Expect(ChainVerifier.Verify(rewritten, audit.Store.Checkpoints("node-1"), audit.PublicKey()), ChainProblem.Modified, 10);
    }

    [Fact]
    public async Task A_forged_checkpoint_is_found()
    {
        await using var audit = await Filled();
        audit.Tamper("UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit_entries WHERE seq = 9), seq = 9 WHERE seq = 10");
        Expect(audit.Verify(), ChainProblem.ForgedCheckpoint, 9);
    }

    [Fact]
    public async Task A_checkpoint_signed_with_another_key_is_found()
    {
        await using var audit = await Filled();
        using var other = CheckpointSigner.LoadOrCreate(audit.Folder.Combine("other-key.pem"));
        var checkpoints = audit.Store.Checkpoints("node-1").ToList();
        var last = checkpoints[^1];
        checkpoints[^1] = other.Sign(last.Node, last.Sequence, last.Hash, last.Time);
        Expect(ChainVerifier.Verify(audit.Store.Chain("node-1"), checkpoints, audit.PublicKey()), ChainProblem.ForgedCheckpoint, last.Sequence);
    }

    [Fact]
    public async Task An_untouched_chain_verifies()
    {
        await using var audit = await Filled();
        var verdict = audit.Verify();
        Assert.True(verdict.Ok, verdict.Message);
        Assert.Equal(40, verdict.EntriesChecked);
    }

    private static async Task<AuditChainFixture> Filled()
    {
        var audit = new AuditChainFixture(new AuditLogOptions { CheckpointEvery = 10, MaxBatch = 1 });
        foreach (var i in Enumerable.Range(1, 40))
        {
            await audit.Log.RecordAsync(AuditChainFixture.Record(i));
        }

        await audit.CloseLogAsync();
        return audit;
    }

    private static void Expect(ChainVerification verdict, ChainProblem problem, long sequence)
    {
        Assert.False(verdict.Ok);
        Assert.True(problem == verdict.Problem && sequence == verdict.FirstBrokenSequence, $"{verdict.Problem} at {verdict.FirstBrokenSequence}: {verdict.Message}");
    }
}
