using Appliance.Engine.KvCache;

namespace Appliance.Engine.Tests.KvCache;

public sealed class PrefixBlockIndexTests
{
    private static int[] Tokens(int count, int seed = 0) => [.. Enumerable.Range(0, count).Select(i => (i * 7) + seed)];

    [Fact]
    public void A_stored_prefix_is_found_in_whole_blocks_up_to_the_limit()
    {
        var index = new PrefixBlockIndex(blockTokens: 4, capacity: 16);
        var prompt = Tokens(14);

        var (first, slots) = index.Insert("a", prompt, computedTokens: 14);

        Assert.Equal(0, first);
        Assert.Equal(3, slots.Count); // 12 of 14 tokens: only whole blocks
        Assert.Equal(slots, index.Match("a", prompt, maxTokens: 13));
        Assert.Equal(slots.Take(2), index.Match("a", prompt, maxTokens: 11));
        Assert.Empty(index.Match("a", prompt, maxTokens: 3));
    }

    [Fact]
    public void Another_tenant_finds_nothing_of_the_same_prompt()
    {
        var index = new PrefixBlockIndex(4, 16);
        var prompt = Tokens(12);
        index.Insert("team-a", prompt, 12);

        Assert.Empty(index.Match("team-b", prompt, 12));
        Assert.Empty(index.Match(string.Empty, prompt, 12));
        Assert.Equal(3, index.Match("team-a", prompt, 12).Count);

        // The other tenant's own copy is stored apart, in new slots.
        var (_, other) = index.Insert("team-b", prompt, 12);
        Assert.Equal(3, other.Count);
        Assert.Empty(other.Intersect(index.Match("team-a", prompt, 12)));
    }

    [Fact]
    public void Prompts_that_diverge_share_the_blocks_before_the_divergence_only()
    {
        var index = new PrefixBlockIndex(4, 16);
        var a = Tokens(12);
        var b = (int[])a.Clone();
        b[5] = 999; // inside the second block
        var (_, stored) = index.Insert("t", a, 12);

        var matched = index.Match("t", b, 12);

        Assert.Equal([stored[0]], matched);
        var (first, added) = index.Insert("t", b, 12);
        Assert.Equal(1, first); // the shared first block is kept, the rest is new
        Assert.Equal(2, added.Count);
        Assert.Equal(5, index.UsedBlocks);
    }

    [Fact]
    public void Identical_blocks_after_different_prefixes_are_different_blocks()
    {
        var index = new PrefixBlockIndex(4, 16);
        int[] a = [1, 2, 3, 4, 9, 9, 9, 9];
        int[] b = [5, 6, 7, 8, 9, 9, 9, 9];
        index.Insert("t", a, 8);

        Assert.Empty(index.Match("t", b, 8));
        Assert.Single(index.Match("t", [1, 2, 3, 4, 9, 9, 9, 8], 8));
    }

    [Fact]
    public void When_full_the_least_recently_used_leaf_goes_first()
    {
        var index = new PrefixBlockIndex(4, 2);
        var a = Tokens(4, 1);
        var b = Tokens(4, 2);
        var c = Tokens(4, 3);
        index.Insert("t", a, 4);
        index.Insert("t", b, 4);
        index.Match("t", a, 4); // a is used again: b is now the oldest

        index.Insert("t", c, 4);

        Assert.Single(index.Match("t", a, 4));
        Assert.Empty(index.Match("t", b, 4));
        Assert.Single(index.Match("t", c, 4));
        Assert.Equal(1, index.Evictions);
    }

    [Fact]
    public void A_tenant_flooding_the_full_pool_evicts_its_own_blocks_before_another_tenants_smaller_set()
    {
        var index = new PrefixBlockIndex(4, 6);
        var systemPrompt = Tokens(8, 1); // two blocks, the oldest in the pool
        index.Insert("light", systemPrompt, 8);

        for (var prompt = 0; prompt < 10; prompt++)
        {
            index.Insert("heavy", Tokens(4, 100 + prompt), 4); // one block each, never asked again
        }

        Assert.Equal(2, index.Match("light", systemPrompt, 8).Count);
        Assert.Equal(6, index.UsedBlocks);
        Assert.Equal(6, index.Evictions); // room was made in heavy's share, its oldest first
        Assert.Empty(index.Match("heavy", Tokens(4, 105), 4));
        Assert.Single(index.Match("heavy", Tokens(4, 106), 4));
    }

    [Fact]
    public void A_tenants_partitions_are_apart_but_share_its_one_part_of_the_pool()
    {
        var index = new PrefixBlockIndex(4, 6);
        var prompt = Tokens(8, 1);
        index.Insert("light", prompt, 8);
        var (_, longSide) = index.Insert("t", prompt, 8, partition: "long-rotary");

        // The same tokens in another partition are other keys: never found from the first one.
        Assert.Empty(index.Match("t", prompt, 8));
        Assert.Equal(longSide, index.Match("t", prompt, 8, partition: "long-rotary"));

        // Flooding both partitions in turn: the tenant holds half the pool in all, not half per partition.
        for (var i = 0; i < 8; i++)
        {
            index.Insert("t", Tokens(4, 100 + i), 4, partition: i % 2 == 0 ? "" : "long-rotary");
        }

        Assert.Equal(2, index.Match("light", prompt, 8).Count);
        Assert.Equal(6, index.UsedBlocks);
    }

    [Fact]
    public void Below_half_the_pool_a_tenant_evicts_the_oldest_leaf_of_anyone_at_half_only_its_own()
    {
        var index = new PrefixBlockIndex(4, 4);
        Assert.Equal(2, index.TenantCap);
        index.Insert("gone", Tokens(4, 1), 4); // a tenant that never comes back
        index.Insert("a", Tokens(4, 2), 4);
        index.Insert("a", Tokens(4, 3), 4);
        index.Insert("b", Tokens(4, 4), 4); // the pool is full

        index.Insert("b", Tokens(4, 5), 4); // b holds one: the least recently used leaf goes, whoever's
        Assert.Empty(index.Match("gone", Tokens(4, 1), 4));

        index.Insert("b", Tokens(4, 6), 4); // b holds half the pool: its own oldest goes, not a's older ones
        Assert.Empty(index.Match("b", Tokens(4, 4), 4));
        Assert.Equal([1, 1, 1, 1], new[] { ("a", 2), ("a", 3), ("b", 5), ("b", 6) }.Select(p => index.Match(p.Item1, Tokens(4, p.Item2), 4).Count));
        Assert.Equal(2, index.Evictions);
    }

    [Fact]
    public void A_tenant_at_half_the_pool_with_no_leaf_of_its_own_to_give_caches_no_further()
    {
        var index = new PrefixBlockIndex(4, 4);
        index.Insert("a", Tokens(4, 1), 4);
        index.Insert("b", Tokens(4, 2), 4);
        index.Insert("b", Tokens(4, 3), 4);

        var (_, slots) = index.Insert("a", Tokens(16, 9), 16); // four blocks in one chain

        // The free slot, then (a at half the pool) its own older block's; then only its chain is left to a, which
        // cannot give up its own start: the rest is not cached, and b keeps its blocks.
        Assert.Equal(2, slots.Count);
        Assert.Equal(2, index.Match("a", Tokens(16, 9), 16).Count);
        Assert.Empty(index.Match("a", Tokens(4, 1), 4));
        Assert.Single(index.Match("b", Tokens(4, 2), 4));
        Assert.Single(index.Match("b", Tokens(4, 3), 4));
        Assert.Equal(1, index.Evictions);
    }

    [Fact]
    public void A_tenant_gone_quiet_does_not_hold_the_others_to_half_the_pool()
    {
        var milliseconds = 0L;
        var index = new PrefixBlockIndex(4, 4, () => milliseconds);
        index.Insert("batch", Tokens(8, 1), 8); // half the pool, then nothing more from it
        index.Insert("day", Tokens(4, 2), 4);
        index.Insert("day", Tokens(4, 3), 4); // full: day holds half

        milliseconds += (long)PrefixBlockIndex.RecentUse.TotalMilliseconds - 1;
        index.Insert("day", Tokens(4, 4), 4); // batch is recent still: day makes room among its own
        Assert.Empty(index.Match("day", Tokens(4, 2), 4));

        milliseconds += 2; // batch quiet for longer than RecentUse: LRU again
        index.Insert("day", Tokens(4, 5), 4);

        Assert.Single(index.Match("batch", Tokens(8, 1), 8)); // its tail, the oldest leaf, went
        Assert.Equal([1, 1, 1], new[] { 3, 4, 5 }.Select(seed => index.Match("day", Tokens(4, seed), 4).Count));
    }

    [Fact]
    public void A_tenant_at_its_cap_takes_an_older_block_of_a_tenant_gone_quiet_before_its_own()
    {
        var milliseconds = 0L;
        var index = new PrefixBlockIndex(4, 6, () => milliseconds);
        index.Insert("quiet", Tokens(4, 1), 4);
        milliseconds += (long)PrefixBlockIndex.RecentUse.TotalMilliseconds + 1;
        index.Insert("recent", Tokens(4, 2), 4);
        foreach (var seed in new[] { 3, 4, 5, 6 })
        {
            index.Insert("busy", Tokens(4, seed), 4); // the last one fills the pool: busy holds more than half
        }

        index.Insert("busy", Tokens(4, 7), 4); // held by recent's blocks to its own, or quiet's older one

        Assert.Equal([1, 1, 1, 1, 1], new[] { 3, 4, 5, 6, 7 }.Select(seed => index.Match("busy", Tokens(4, seed), 4).Count));
        Assert.Single(index.Match("recent", Tokens(4, 2), 4));
        Assert.Empty(index.Match("quiet", Tokens(4, 1), 4));
    }

    [Fact]
    public void A_block_that_others_extend_outlives_them_and_a_prefix_never_loses_its_start()
    {
        var index = new PrefixBlockIndex(4, 3);
        var longPrompt = Tokens(12, 1); // three blocks, chained: only the last is a leaf
        index.Insert("t", longPrompt, 12);
        index.Match("t", longPrompt, 12);

        var (_, slots) = index.Insert("t", Tokens(4, 50), 4);

        Assert.Single(slots);
        Assert.Equal(2, index.Match("t", longPrompt, 12).Count); // its tail went, its first two blocks stay
    }

    [Fact]
    public void A_prompt_longer_than_the_pool_is_stored_as_far_as_it_fits()
    {
        var index = new PrefixBlockIndex(4, 2);
        var prompt = Tokens(20);

        var (first, slots) = index.Insert("t", prompt, 20);

        Assert.Equal((0, 2), (first, slots.Count)); // the chain cannot evict its own start
        Assert.Equal(slots, index.Match("t", prompt, 20));
    }

    [Fact]
    public void Clearing_forgets_everything_and_frees_every_slot()
    {
        var index = new PrefixBlockIndex(4, 2);
        index.Insert("t", Tokens(8), 8);

        index.Clear();

        Assert.Empty(index.Match("t", Tokens(8), 8));
        Assert.Equal(0, index.UsedBlocks);
        Assert.Equal(2, index.Insert("u", Tokens(8, 3), 8).Slots.Count);
        Assert.Equal(0, index.Evictions);
    }
}
