using System.Net;
using System.Text;
using System.Text.Json;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Identity;

/// <summary>Per-model access by role, group and clearance, on a running host with three models of different labels.</summary>
public sealed class ModelAccessTests : IDisposable
{
    private readonly TempFolder _root = new("model-access");

    [Fact]
    public async Task Callers_see_and_use_only_the_models_their_roles_groups_and_clearance_allow()
    {
        await using var running = await StartAsync();

        // Default clearance (internal): the open model only; the finance model needs the role or the group.
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"]));
        Assert.Equal(["open"], await ModelIds(ada));
        Assert.Equal(HttpStatusCode.OK, (await Chat(ada, "open")).StatusCode);
        using var notAllowed = await Chat(ada, "finance");
        Assert.Equal(HttpStatusCode.Forbidden, notAllowed.StatusCode);
        Assert.Contains("\"code\":\"model_not_allowed\"", await notAllowed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, (await ada.GetAsync("/v1/models/finance")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await Chat(ada, "secret")).StatusCode); // clearance too low: the same answer

        // The group admits without the role; a restricted clearance opens the restricted model.
        using var bob = running.ClientWith(running.MintToken("bob", ["appliance-user"], groups: ["/finance/controlling"], clearance: "restricted"));
        Assert.Equal(["finance", "open", "secret"], await ModelIds(bob));
        Assert.Equal(HttpStatusCode.OK, (await Chat(bob, "finance")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Chat(bob, "secret")).StatusCode);

        // A clearance claim naming no level counts as the lowest, not as the default.
        using var typo = running.ClientWith(running.MintToken("eve", ["appliance-user", "finance-analyst"], clearance: "top-secret"));
        Assert.Equal(HttpStatusCode.Forbidden, (await Chat(typo, "finance")).StatusCode);
    }

    [Fact]
    public async Task Forbidden_models_can_answer_404_so_that_their_names_do_not_leak()
    {
        await using var running = await StartAsync("--Identity:HideForbiddenModels=true");
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"]));
        using var hidden = await Chat(ada, "finance");
        Assert.Equal(HttpStatusCode.NotFound, hidden.StatusCode);
        Assert.Contains("\"code\":\"model_not_found\"", await hidden.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await ada.GetAsync("/v1/models/finance")).StatusCode);
    }

    [Fact]
    public async Task A_model_label_that_is_not_a_level_stops_start_up_naming_the_key()
    {
        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => StartAsync("--Models:open:Classification=top-secret"));
        Assert.Contains("Models:open:Classification", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--Models:finance:AllowedGroup:0=/finance", "AllowedGroup")] // misspelled: the model was open to all
    [InlineData("--Models:finance:AllowedGroups=/finance", "Models:finance:AllowedGroups must be a list")] // one value: an empty list
    [InlineData("--Models:finance:MemoryBytes=12GiB", "Models:finance:MemoryBytes")] // the binder dropped the whole model
    public async Task A_model_setting_the_binder_would_pass_over_stops_start_up_naming_it(string setting, string named)
    {
        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => StartAsync(setting));
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _root.Dispose();

    private async Task<RunningAppliance> StartAsync(params string[] extra)
    {
        var folder = _root.Combine("tiny");
        if (!Directory.Exists(folder))
        {
            SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, folder);
        }

        var running = await RunningAppliance.StartAsync(
        [
            $"--Models:open:Path={folder}", "--Models:open:Classification=public",
            $"--Models:finance:Path={folder}", "--Models:finance:AllowedRoles:0=finance-analyst", "--Models:finance:AllowedGroups:0=/finance/controlling",
            $"--Models:secret:Path={folder}", "--Models:secret:Classification=restricted",
            "--Appliance:BuiltInEmbeddings=false", $"--Appliance:DataFolder={_root.Combine("data")}", "--Logging:LogLevel:Default=None",
            .. extra,
        ]);
        await running.WaitUntilReadyAsync();
        return running;
    }

    private static async Task<string[]> ModelIds(HttpClient client)
    {
        using var document = JsonDocument.Parse(await client.GetStringAsync("/v1/models"));
        return [.. document.RootElement.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()!).Order(StringComparer.Ordinal)];
    }

    private static Task<HttpResponseMessage> Chat(HttpClient client, string model) =>
        client.PostAsync("/v1/chat/completions", new StringContent(
            $$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""", Encoding.UTF8, "application/json"));
}
