using Appliance.Engine.KvCache;

namespace Appliance.Engine.Tests.KvCache;

public sealed class KvCacheManagerTests
{
    [Fact]
    public void Reservations_are_refused_when_full_and_succeed_after_free()
    {
        var cache = new KvCacheManager(100);
        Assert.NotNull(cache.TryAllocate(1, 60));
        Assert.Null(cache.TryAllocate(2, 50));
        Assert.Equal(60, cache.UsedTokens);

        cache.Free(1);
        Assert.NotNull(cache.TryAllocate(2, 50));
        Assert.Equal(50, cache.FreeTokens);
    }

    [Fact]
    public void A_sequence_cannot_reserve_twice()
    {
        var cache = new KvCacheManager(100);
        cache.TryAllocate(1, 10);
        Assert.Throws<InvalidOperationException>(() => cache.TryAllocate(1, 10));
    }
}
