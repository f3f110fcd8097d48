using System.Net;
using System.Text;
using System.Text.Json;
using Appliance.Host;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;
using Microsoft.Extensions.Configuration;

namespace Appliance.IntegrationTests.Host;

/// <summary>
/// What a deployed node relies on: settings files outside the release (APPLIANCE_SETTINGS), re-read when Ansible changes
/// them, and the caller's address taken from a trusted load balancer's X-Forwarded-For.
/// </summary>
public sealed class NodeSettingsTests : IDisposable
{
    private readonly TempFolder _root = new("node-settings");

    [Fact]
    public async Task Settings_files_rank_below_the_command_line_and_a_model_declared_later_loads_without_a_restart()
    {
        var settings = _root.Combine("appsettings.json");
        var models = _root.Combine("models.json");
        File.WriteAllText(settings, """{ "Limits": { "MaxN": 2, "MaxMessages": 7 } }""");
        File.WriteAllText(models, Declaration("first"));
        await using var running = await RunningAppliance.StartAsync(
            $"--APPLIANCE_SETTINGS={settings}:{models}", "--Limits:MaxMessages=9", "--Logging:LogLevel:Default=Warning");
        await running.WaitUntilReadyAsync();

        Assert.Equal(["first"], await ModelIds(running));
        Assert.Equal(2, running.App.Configuration.GetValue<int>("Limits:MaxN"));
        Assert.Equal(9, running.App.Configuration.GetValue<int>("Limits:MaxMessages"));

        // What the models role does: rewrite the file, then ask the node to load what it now declares. The node reads
        // its files again for the load: the file watcher (a quarter of a second behind at best) is not waited for.
        File.WriteAllText(models, Declaration("first", "second"));
        using (var load = await running.Http.PostAsync("/admin/models/second/load", null))
        {
            Assert.True(load.StatusCode == HttpStatusCode.OK, await load.Content.ReadAsStringAsync());
        }

        Assert.Equal(["first", "second"], (await ModelIds(running)).Order());

        // An administrator's typo (a folder that does not exist): the load names the invalid configuration, and what
        // runs keeps running.
        File.WriteAllText(models, JsonSerializer.Serialize(new { Models = new { first = new { Path = _root.Combine("first"), IntraOpThreads = 1 }, third = new { Path = _root.Combine("thrid") } } }));
        using (var load = await running.Http.PostAsync("/admin/models/third/load", null))
        {
            var body = await load.Content.ReadAsStringAsync();
            Assert.True(load.StatusCode == HttpStatusCode.NotFound && body.Contains("configuration is invalid", StringComparison.Ordinal), body);
        }

        Assert.Equal(["first", "second"], (await ModelIds(running)).Order());
    }

    [Fact]
    public async Task Access_rules_of_a_model_declared_or_narrowed_later_hold_without_a_restart()
    {
        var models = _root.Combine("access-models.json");
        var folder = _root.Combine("first");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, folder);
        string Declare(object declared) => JsonSerializer.Serialize(new { Models = declared });
        File.WriteAllText(models, Declare(new { first = new { Path = folder, IntraOpThreads = 1 } }));
        await using var running = await RunningAppliance.StartAsync(
            $"--APPLIANCE_SETTINGS={models}", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=Warning");
        await running.WaitUntilReadyAsync();
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"]));
        using var bob = running.ClientWith(running.MintToken("bob", ["appliance-user"], groups: ["/finance"]));
        Assert.Equal(HttpStatusCode.OK, await ChatStatus(ada, "first"));

        // The models role's way: rewrite the file, then load the new model and reload the changed one.
        File.WriteAllText(models, Declare(new
        {
            first = new { Path = folder, IntraOpThreads = 1, AllowedGroups = new[] { "/finance" } },
            guarded = new { Path = folder, IntraOpThreads = 1, AllowedGroups = new[] { "/finance" }, Classification = "restricted" },
        }));
        foreach (var (model, action) in new[] { ("guarded", "load"), ("first", "reload") })
        {
            using var answer = await running.Http.PostAsync($"/admin/models/{model}/{action}", null);
            Assert.True(answer.IsSuccessStatusCode, await answer.Content.ReadAsStringAsync());
        }

        Assert.Equal(HttpStatusCode.Forbidden, await ChatStatus(ada, "guarded"));
        Assert.Equal(HttpStatusCode.Forbidden, await ChatStatus(ada, "first"));
        Assert.Equal(HttpStatusCode.OK, await ChatStatus(bob, "first"));
        Assert.Equal(HttpStatusCode.Forbidden, await ChatStatus(bob, "guarded")); // the label, restricted, is above his clearance
        using var restricted = running.ClientWith(running.MintToken("cy", ["appliance-user"], groups: ["/finance"], clearance: "restricted"));
        Assert.Equal(HttpStatusCode.OK, await ChatStatus(restricted, "guarded"));

        // A label the realm does not know, written later, is refused by the load, naming the key; the rules stay.
        File.WriteAllText(models, Declare(new
        {
            first = new { Path = folder, IntraOpThreads = 1, AllowedGroups = new[] { "/finance" } },
            guarded = new { Path = folder, IntraOpThreads = 1, Classification = "top-secret" },
        }));
        using (var reload = await running.Http.PostAsync("/admin/models/guarded/reload", null))
        {
            var body = await reload.Content.ReadAsStringAsync();
            Assert.True(reload.StatusCode == HttpStatusCode.NotFound && body.Contains("Models:guarded:Classification", StringComparison.Ordinal), body);
        }

        Assert.Equal(HttpStatusCode.Forbidden, await ChatStatus(ada, "first"));
        Assert.Equal(HttpStatusCode.Forbidden, await ChatStatus(ada, "guarded"));

        // A model taken out of the file but not unloaded yet keeps its rules (not the open rule of undeclared models).
        File.WriteAllText(models, Declare(new { guarded = new { Path = folder, IntraOpThreads = 1, AllowedGroups = new[] { "/finance" }, Classification = "restricted" } }));
        using (var reread = await running.Http.PostAsync("/admin/models/guarded/reload", null))
        {
            Assert.True(reread.IsSuccessStatusCode, await reread.Content.ReadAsStringAsync());
        }

        Assert.Equal(HttpStatusCode.Forbidden, await ChatStatus(ada, "first"));
        Assert.Equal(HttpStatusCode.OK, await ChatStatus(bob, "first"));

        // Unloading what is no declared model says what the name is instead of "not loaded".
        File.WriteAllText(models, Declare(new { first = new { Path = folder, IntraOpThreads = 1, Aliases = new[] { "f1" } } }));
        foreach (var (name, says) in new[] { ("all-minilm-l6-v2", "built-in embedding model"), ("f1", "alias of model 'first'"), ("nothing", "no model 'nothing' is declared") })
        {
            using var unload = await running.Http.PostAsync($"/admin/models/{name}/unload", null);
            var body = await unload.Content.ReadAsStringAsync();
            Assert.True(!unload.IsSuccessStatusCode && body.Contains(says, StringComparison.Ordinal), body);
        }
    }

    [Fact]
    public async Task A_missing_settings_file_stops_start_up_naming_it()
    {
        var missing = _root.Combine("absent.json");
        var error = await Assert.ThrowsAsync<SettingsException>(() =>
            RunningAppliance.StartAsync($"--APPLIANCE_SETTINGS={missing}"));
        Assert.Contains(missing, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_audit_log_records_the_forwarded_address_only_from_a_trusted_proxy()
    {
        await using (var trusting = await RunningAppliance.StartAsync("--Appliance:TrustedProxies:0=127.0.0.0/8"))
        {
            Assert.Equal("203.0.113.7", await RecordedSource(trusting));
        }

        await using (var untrusting = await RunningAppliance.StartAsync("--Appliance:TrustedProxies:0=10.1.2.3"))
        {
            Assert.Equal("127.0.0.1", await RecordedSource(untrusting));
        }

        await using var plain = await RunningAppliance.StartAsync();
        Assert.Equal("127.0.0.1", await RecordedSource(plain));
    }

    [Fact]
    public void A_trusted_proxy_that_is_no_address_stops_start_up_naming_it()
    {
        var error = Assert.Throws<SettingsException>(() =>
            ApplianceApp.Create(["--environment=Development", "--Appliance:TrustedProxies:0=haproxy.local"]));
        Assert.Contains("haproxy.local", error.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _root.Dispose();

    private static async Task<string?> RecordedSource(RunningAppliance running)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        request.Headers.Add("X-Forwarded-For", "203.0.113.7");
        using (var response = await running.Http.SendAsync(request))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        using var document = JsonDocument.Parse(await running.Http.GetStringAsync("/audit/events?limit=1000"));
        return document.RootElement.GetProperty("data").EnumerateArray()
            .First(e => e.GetProperty("endpoint").GetString() == "/v1/models").GetProperty("sourceIp").GetString();
    }

    private static async Task<List<string>> ModelIds(RunningAppliance running)
    {
        using var document = JsonDocument.Parse(await running.Http.GetStringAsync("/v1/models"));
        return [.. document.RootElement.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()!)
            .Where(id => id is "first" or "second")];
    }

    private static async Task<HttpStatusCode> ChatStatus(HttpClient client, string model)
    {
        using var response = await client.PostAsync("/v1/chat/completions", new StringContent(
            $$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""", System.Text.Encoding.UTF8, "application/json"));
        return response.StatusCode;
    }

    private string Declaration(params string[] ids)
    {
        var models = new Dictionary<string, object>();
        foreach (var id in ids)
        {
            var folder = _root.Combine(id);
            if (!Directory.Exists(folder))
            {
                SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, folder);
            }

            models[id] = new { Path = folder, IntraOpThreads = 1 };
        }

        return JsonSerializer.Serialize(new { Models = models });
    }
}
