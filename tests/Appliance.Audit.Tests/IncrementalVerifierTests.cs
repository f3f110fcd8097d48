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

    private static async Task Record(AuditChainFixture audit, int first, int last)
    {
        foreach (var i in Enumerable.Range(first, last - first + 1))
        {
            await audit.Log.RecordAsync(AuditChainFixture.Record(i));
        }
    }
}
