using Appliance.Engine.Output;

namespace Appliance.Engine.Tests.Output;

public sealed class StopStringFilterTests
{
    [Fact]
    public void A_stop_string_split_over_pushes_is_caught_and_not_emitted()
    {
        var filter = new StopStringFilter(["</end>"]);
        var emitted = filter.Push("Hello </") + filter.Push("en") + filter.Push("d> after");

        Assert.True(filter.Stopped);
        Assert.Equal("Hello ", emitted);
    }

    [Fact]
    public void Text_that_only_looked_like_a_stop_string_is_released()
    {
        var filter = new StopStringFilter(["STOP"]);
        Assert.Equal("a ", filter.Push("a ST"));
        Assert.Equal("STart", filter.Push("art"));
        Assert.Equal(string.Empty, filter.Push("ST"));
        Assert.Equal("ST", filter.Flush());
        Assert.False(filter.Stopped);
    }

    [Fact]
    public void The_earliest_of_several_stop_strings_wins()
    {
        var filter = new StopStringFilter(["zz", "b"]);
        Assert.Equal("a", filter.Push("abzz"));
        Assert.True(filter.Stopped);
        Assert.Equal(string.Empty, filter.Push("more"));
    }

    [Fact]
    public void Without_stop_strings_text_passes_straight_through()
    {
        var filter = new StopStringFilter([]);
        Assert.Equal("anything", filter.Push("anything"));
    }

    [Fact]
    public void The_stop_string_that_matched_is_known_even_when_it_arrived_in_pieces()
    {
        var filter = new StopStringFilter(["END", "STOP", "ST"]);

        Assert.Equal("Hello ", filter.Push("Hello S"));
        Assert.Null(filter.Matched);
        Assert.Equal(string.Empty, filter.Push("TOP and END"));
        Assert.True(filter.Stopped);
        Assert.Equal("STOP", filter.Matched); // the earliest match, the longest of those starting there
    }
}
