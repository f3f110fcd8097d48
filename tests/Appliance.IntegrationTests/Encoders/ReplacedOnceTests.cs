using Appliance.Api.OpenAi;

namespace Appliance.IntegrationTests.Encoders;

/// <summary>
/// A request whose encoder closed under it runs once more on the version the catalog holds now, and only when that is
/// another version; otherwise it ends as unavailable (503), never in a loop.
/// </summary>
public sealed class ReplacedOnceTests
{
    private sealed class Version(string name, bool closed)
    {
        public string Name { get; } = name;

        public int Runs { get; set; }

        public Task<string> RunAsync()
        {
            Runs++;
            return closed ? throw new ObjectDisposedException(Name) : Task.FromResult(Name);
        }
    }

    [Fact]
    public async Task A_closed_version_hands_the_request_to_the_new_one()
    {
        var (old, next) = (new Version("old", closed: true), new Version("new", closed: false));

        var answer = await ReplacedOnce.RunAsync(old, () => next, v => v.RunAsync());

        Assert.Equal(("new", 1, 1), (answer, old.Runs, next.Runs));
    }

    [Fact]
    public async Task A_version_closed_and_not_replaced_ends_the_request()
    {
        var old = new Version("old", closed: true);

        await Assert.ThrowsAsync<ObjectDisposedException>(() => ReplacedOnce.RunAsync(old, () => old, v => v.RunAsync()));
        Assert.Equal(1, old.Runs);
    }

    [Fact]
    public async Task The_request_is_handed_on_once_at_most()
    {
        var (old, next) = (new Version("old", closed: true), new Version("next", closed: true));

        await Assert.ThrowsAsync<ObjectDisposedException>(() => ReplacedOnce.RunAsync(old, () => next, v => v.RunAsync()));
        Assert.Equal((1, 1), (old.Runs, next.Runs));
    }

    [Fact]
    public async Task An_id_that_a_reload_turned_into_another_kind_of_model_ends_as_unavailable_not_as_a_bad_request()
    {
        var old = new Version("old", closed: true);

        var ended = await Assert.ThrowsAsync<ObjectDisposedException>(() => ReplacedOnce.RunAsync<Version, string>(
            old, () => throw new OpenAiRequestException(OpenAiError.Invalid("a generative model now", "model", "model_not_supported")), v => v.RunAsync()));

        Assert.IsType<OpenAiRequestException>(ended.InnerException);
    }
}
