using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;
using OpenAI;
using OpenAI.Chat;

namespace Appliance.IntegrationTests.Identity;

/// <summary>API keys: issued by an admin to an identity, stored as hashes, carrying roles, revocable; off by default.</summary>
public sealed class ApiKeyTests : IDisposable
{
    private readonly TempFolder _root = new("api-keys");

    [Fact]
    public async Task Api_keys_are_off_by_default()
    {
        await using var running = await StartAsync(enabled: false);
        using var issue = await running.Http.PostAsJsonAsync("/admin/api-keys", new { owner = "svc-report", name = "job", roles = new[] { "appliance-user" } });
        Assert.Equal(HttpStatusCode.NotFound, issue.StatusCode);
        Assert.Equal("application/problem+json", issue.Content.Headers.ContentType?.MediaType);
        Assert.Contains("Identity:ApiKeys:Enabled", await issue.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var client = running.ClientWith("apk_0123456789abcdef_" + new string('x', 43));
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/v1/models")).StatusCode);
    }

    [Fact]
    public async Task An_issued_key_works_with_the_OpenAI_SDK_until_it_is_revoked_even_across_a_restart()
    {
        string key;
        string id;
        await using (var running = await StartAsync(enabled: true))
        {
            // The issuing administrator is in /finance: a key carries at most what its issuer holds.
            using var financeAdmin = running.ClientWith(running.MintToken("tester", RunningAppliance.AllRoles, groups: ["/finance"]));
            using var issue = await financeAdmin.PostAsJsonAsync("/admin/api-keys",
                new { owner = "svc-report", name = "nightly report", roles = new[] { "appliance-user" }, groups = new[] { "/finance" }, expiresInDays = 30 });
            Assert.Equal(HttpStatusCode.Created, issue.StatusCode);
            using var issued = JsonDocument.Parse(await issue.Content.ReadAsStringAsync());
            key = issued.RootElement.GetProperty("key").GetString()!;
            id = issued.RootElement.GetProperty("apiKey").GetProperty("id").GetString()!;
            Assert.StartsWith("apk_" + id + "_", key, StringComparison.Ordinal);

            // Only a hash is stored.
            // The SQLite key table and its write-ahead log, read as raw bytes.
            var stored = string.Concat(Directory.GetFiles(Path.Combine(_root.Combine("data"), "identity"), "api-keys.db*")
                .Select(file => System.Text.Encoding.Latin1.GetString(File.ReadAllBytes(file))));
            // The secret is base64url and may itself contain '_': it is everything after "apk_<id>_".
            Assert.DoesNotContain(key[$"apk_{id}_".Length..], stored, StringComparison.Ordinal);
            Assert.Contains(id, stored, StringComparison.Ordinal);

            var chat = new ChatClient("finance", new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri(running.Http.BaseAddress!, "/v1") });
            var completion = await chat.CompleteChatAsync([new UserChatMessage("Hello")], new ChatCompletionOptions { MaxOutputTokenCount = 2 });
            Assert.Equal(2, completion.Value.Usage.OutputTokenCount); // the key's group opens the finance model

            using var withKey = running.ClientWith(key);
            Assert.Equal(HttpStatusCode.Forbidden, (await withKey.GetAsync("/admin/api-keys")).StatusCode); // a key is no admin
        }

        await using (var restarted = await StartAsync(enabled: true))
        {
            using var withKey = restarted.ClientWith(key);
            Assert.Equal(HttpStatusCode.OK, (await withKey.GetAsync("/v1/models")).StatusCode); // keys survive a restart

            Assert.Equal(HttpStatusCode.NoContent, (await restarted.Http.DeleteAsync($"/admin/api-keys/{id}")).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await withKey.GetAsync("/v1/models")).StatusCode);

            using var list = JsonDocument.Parse(await restarted.Http.GetStringAsync("/admin/api-keys"));
            var listed = list.RootElement.GetProperty("data").EnumerateArray().Single(k => k.GetProperty("id").GetString() == id);
            Assert.False(listed.GetProperty("active").GetBoolean());
            Assert.Equal("tester", listed.GetProperty("revokedBy").GetString());
            Assert.False(listed.TryGetProperty("secretHash", out _));

            // Both administrative actions are in the audit log (the issue in the first run's chain, which this one continues).
            using var actions = JsonDocument.Parse(await restarted.Http.GetStringAsync("/audit/events?kind=admin.action"));
            var details = actions.RootElement.GetProperty("data").EnumerateArray().Select(e => e.GetProperty("detail").GetString()).ToList();
            Assert.Contains("issue API key 'nightly report' to svc-report with roles appliance-user, groups /finance, clearance internal, for 30 days", details);
            Assert.Contains($"revoke API key {id}", details);
        }

        await using var again = await StartAsync(enabled: true);
        using var revokedKey = again.ClientWith(key);
        Assert.Equal(HttpStatusCode.Unauthorized, (await revokedKey.GetAsync("/v1/models")).StatusCode); // revocation survives too
    }

    [Fact]
    public async Task A_key_with_the_right_id_and_a_wrong_secret_is_refused()
    {
        await using var running = await StartAsync(enabled: true);
        using var issue = await running.Http.PostAsJsonAsync("/admin/api-keys", new { owner = "svc-report", name = "job", roles = new[] { "appliance-user" } });
        var key = JsonDocument.Parse(await issue.Content.ReadAsStringAsync()).RootElement.GetProperty("key").GetString()!;
        using var forged = running.ClientWith(key[..^4] + "AAAA");
        Assert.Equal(HttpStatusCode.Unauthorized, (await forged.GetAsync("/v1/models")).StatusCode);
    }

    [Theory]
    [InlineData("""{"owner":"svc-report","name":"job","roles":["appliance-admin"]}""", "roles")]
    [InlineData("""{"name":"job","roles":["appliance-user"]}""", "owner")]
    [InlineData("""{"owner":"svc-report","name":"job","roles":[]}""", "roles")]
    [InlineData("""{"owner":"svc-report","name":"job","roles":["appliance-user"],"expiresInDays":5000}""", "expiresInDays")]
    [InlineData("""{"owner":"svc-report","name":"job","roles":["appliance-user"],"clearance":"cosmic"}""", "clearance")]
    [InlineData("""{"owner":"svc-report","name":"job","roles":["appliance-auditor"]}""", "roles")] // audit needs a sign-in
    [InlineData("""{"owner":"ada","name":"job","roles":["appliance-user"]}""", "owner")] // a colleague, not a service account
    [InlineData("""{"owner":"svc-report","name":"job","roles":["finance-analyst"]}""", "roles")] // a role the issuer does not hold
    [InlineData("""{"owner":"svc-report","name":"job","roles":["appliance-user"],"groups":["/hr"]}""", "groups")] // a group the issuer is not in
    [InlineData("""{"owner":"svc-report","name":"job","roles":["appliance-user"],"clearance":"confidential"}""", "clearance")] // above the issuer's
    [InlineData("""{"owner":"svc-report","name":"job","roles":["appliance-user"],"expiresInDays":"30"}""", "expiresInDays")] // was the default, 90
    [InlineData("""{"owner":"svc-report","name":"job","roles":["appliance-user"],"expiresInDays":7.5}""", "expiresInDays")]
    [InlineData("""{"owner":"svc-report","name":"job","roles":["appliance-user"],"clearance":1}""", "clearance")]
    [InlineData("""{"owner":"svc-report","name":"job","roles":["appliance-user"],"expires_in_days":7}""", "expires_in_days")] // a typo, not the default

    public async Task A_bad_issue_request_is_a_400_problem_naming_the_field(string body, string field)
    {
        await using var running = await StartAsync(enabled: true);
        using var response = await running.Http.PostAsync("/admin/api-keys", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.True(problem.RootElement.GetProperty("errors").TryGetProperty(field, out _), problem.RootElement.GetRawText());
    }

    [Fact]
    public async Task An_administrator_may_issue_a_key_to_themself_up_to_their_own_clearance()
    {
        await using var running = await StartAsync(enabled: true);
        using var cleared = running.ClientWith(running.MintToken("grace", ["appliance-admin"], clearance: "confidential"));

        using var own = await cleared.PostAsJsonAsync("/admin/api-keys", new { owner = "grace", name = "laptop", roles = new[] { "appliance-user" }, clearance = "confidential" });
        Assert.Equal(HttpStatusCode.Created, own.StatusCode);
        using var above = await cleared.PostAsJsonAsync("/admin/api-keys", new { owner = "grace", name = "laptop", roles = new[] { "appliance-user" }, clearance = "restricted" });
        Assert.Equal(HttpStatusCode.BadRequest, above.StatusCode);
    }

    [Fact]
    public async Task Only_administrators_may_issue_keys()
    {
        await using var running = await StartAsync(enabled: true);
        using var user = running.ClientWith(running.MintToken("ada", ["appliance-user"]));
        using var response = await user.PostAsJsonAsync("/admin/api-keys", new { owner = "svc-report", name = "job", roles = new[] { "appliance-user" } });
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.NotFound, (await running.Http.DeleteAsync("/admin/api-keys/0000000000000000")).StatusCode);
    }

    public void Dispose() => _root.Dispose();

    private async Task<RunningAppliance> StartAsync(bool enabled)
    {
        var folder = _root.Combine("tiny");
        if (!Directory.Exists(folder))
        {
            SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, folder);
        }

        var running = await RunningAppliance.StartAsync(
            $"--Models:finance:Path={folder}", "--Models:finance:AllowedGroups:0=/finance", $"--Identity:ApiKeys:Enabled={enabled}", "--Identity:ApiKeys:ServiceOwners:0=svc-report",
            "--Appliance:BuiltInEmbeddings=false", $"--Appliance:DataFolder={_root.Combine("data")}", "--Logging:LogLevel:Default=None");
        await running.WaitUntilReadyAsync();
        return running;
    }
}
