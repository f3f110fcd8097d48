using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Pool;

/// <summary>User and team quotas: the 429 body and headers, counters that survive a restart and are shared between nodes.</summary>
public sealed class QuotaTests : IDisposable
{
    private readonly TempFolder _root = new("quotas");

    [Fact]
    public async Task Requests_per_minute_answer_429_naming_the_quota_and_its_reset()
    {
        await using var running = await Start(null, "--Quotas:User:RequestsPerMinute=2");
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"]));
        using var bob = running.ClientWith(running.MintToken("bob", ["appliance-user"]));
        await AwayFromTheMinuteBoundary();

        Assert.Equal(HttpStatusCode.OK, (await ada.PostAsync("/v1/chat/completions", Chat())).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ada.PostAsync("/v1/chat/completions", Chat())).StatusCode);
        using var refused = await ada.PostAsync("/v1/chat/completions", Chat());

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        var retryAfter = refused.Headers.RetryAfter?.Delta ?? TimeSpan.Zero;
        Assert.InRange(retryAfter.TotalSeconds, 1, 60);
        Assert.False(refused.Headers.Contains("x-should-retry")); // within the minute: the SDK's retry after Retry-After is right
        Assert.Equal("requests_per_minute", refused.Headers.GetValues("X-Quota-Name").Single());
        var reset = DateTimeOffset.Parse(refused.Headers.GetValues("X-Quota-Reset").Single(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(0, reset.Second);
        using var error = JsonDocument.Parse(await refused.Content.ReadAsStringAsync());
        var body = error.RootElement.GetProperty("error");
        Assert.Equal("quota_exceeded", body.GetProperty("code").GetString());
        Assert.Equal("rate_limit_error", body.GetProperty("type").GetString());
        Assert.Contains("requests per minute for user 'ada'", body.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await bob.PostAsync("/v1/chat/completions", Chat())).StatusCode); // another user has his own

        using var refusals = JsonDocument.Parse(await running.Http.GetStringAsync("/audit/events?kind=request.refused"));
        Assert.Contains(refusals.RootElement.GetProperty("data").EnumerateArray(), e =>
            e.GetProperty("username").GetString() == "ada" && e.GetProperty("detail").GetString()!.StartsWith("quota requests_per_minute", StringComparison.Ordinal));
        var metrics = await running.Http.GetStringAsync("/metrics");
        Assert.Contains("quota_rejections_total{quota=\"requests_per_minute\",scope=\"user\"}", metrics.Replace("appliance_", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_answer_gives_what_is_left_of_the_tightest_limits_in_the_headers_OpenAI_and_Anthropic_clients_read()
    {
        await using var running = await Start(null, "--Quotas:User:RequestsPerMinute=3", "--Quotas:User:TokensPerDay=100000", "--Quotas:Team:TokensPerDay=500");
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"], groups: ["/research"]));
        await AwayFromTheMinuteBoundary();

        var untilMidnightBefore = (DateTime.UtcNow.Date.AddDays(1) - DateTime.UtcNow).TotalSeconds;
        using var first = await ada.PostAsync("/v1/chat/completions", Chat(maxTokens: 4));
        var untilMidnightAfter = (DateTime.UtcNow.Date.AddDays(1) - DateTime.UtcNow).TotalSeconds;
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal("3", Header(first, "x-ratelimit-limit-requests"));
        Assert.Equal("2", Header(first, "x-ratelimit-remaining-requests")); // this request counted
        Assert.Matches("^([1-9][0-9]?s|[1-9][0-9]*ms|1m0s)$", Header(first, "x-ratelimit-reset-requests")); // the minute's end, as Go writes it
        Assert.Equal("500", Header(first, "x-ratelimit-limit-tokens")); // the team's day is tighter than the user's
        Assert.Equal("500", Header(first, "x-ratelimit-remaining-tokens")); // its tokens are charged when it ends
        var resetTokens = System.Text.RegularExpressions.Regex.Match(Header(first, "x-ratelimit-reset-tokens"), "^(?:([0-9]+)h)?(?:([0-9]+)m)?([0-9]+)s$");
        Assert.True(resetTokens.Success, Header(first, "x-ratelimit-reset-tokens"));
        var seconds = resetTokens.Groups.Values.Skip(1).Select(g => g.Success ? int.Parse(g.Value, System.Globalization.CultureInfo.InvariantCulture) : 0).ToArray();
        // Computed while the request ran, rounded up to the second (a machine's clock, not a fixed offset: a day's end).
        Assert.InRange((seconds[0] * 3600) + (seconds[1] * 60) + seconds[2], untilMidnightAfter - 1, untilMidnightBefore + 1);
        var firstTokens = (await first.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("usage").GetProperty("total_tokens").GetInt64();
        // The charge lands as the handler ends, before the audit middleware writes the completed record: wait for that.
        var charged = DateTime.UtcNow.AddSeconds(30);
        while (!(await running.Http.GetStringAsync("/audit/events?user=ada&kind=request.completed")).Contains("\"ada\"", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < charged, "the first request was never recorded as completed");
            await Task.Delay(50);
        }

        using var messages = await ada.PostAsync("/v1/messages", new StringContent(
            """{"model":"tiny","max_tokens":2,"messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, messages.StatusCode);
        Assert.False(messages.Headers.Contains("x-ratelimit-limit-requests")); // Anthropic's names on Anthropic's API
        Assert.Equal("1", Header(messages, "anthropic-ratelimit-requests-remaining"));
        Assert.Equal((500 - firstTokens).ToString(System.Globalization.CultureInfo.InvariantCulture), Header(messages, "anthropic-ratelimit-tokens-remaining"));
        Assert.Equal(DateTime.UtcNow.Date.AddDays(1), DateTimeOffset.Parse(Header(messages, "anthropic-ratelimit-tokens-reset"), System.Globalization.CultureInfo.InvariantCulture).UtcDateTime);

        Assert.Equal(HttpStatusCode.OK, (await ada.PostAsync("/v1/chat/completions", Chat())).StatusCode);
        using var refused = await ada.PostAsync("/v1/chat/completions", Chat());
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("0", Header(refused, "x-ratelimit-remaining-requests"));
    }

    [Fact]
    public async Task A_request_the_engine_refuses_after_admission_is_not_counted_in_its_rate_limit_headers()
    {
        await using var running = await Start(null, "--Quotas:User:RequestsPerMinute=100", "--Models:tiny:MaxBatchSize=1", "--Models:tiny:MaxQueuedRequests=1",
            "--Limits:MaxTokens=4000");
        await AwayFromTheMinuteBoundary();
        var admitted = new List<HttpResponseMessage>();
        for (var i = 0; i < 2; i++)
        {
            // One runs, one waits: both admitted and counted.
            admitted.Add(await running.Http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Chat(maxTokens: 4000, stream: true) },
                HttpCompletionOption.ResponseHeadersRead));
            Assert.Equal(HttpStatusCode.OK, admitted[^1].StatusCode);
        }

        using var refused = await running.Http.PostAsync("/v1/chat/completions", Chat(maxTokens: 4000, stream: true)); // the queue is full
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Contains("rate_limit_exceeded", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal("98", Header(refused, "x-ratelimit-remaining-requests")); // admitted, then given back
        admitted.ForEach(a => a.Dispose());
    }

    [Theory]
    [InlineData(0, "0s")]
    [InlineData(17, "17ms")]
    [InlineData(1000, "1s")]
    [InlineData(1200, "2s")] // rounded up: a client waiting that long finds the window reset
    [InlineData(360_000, "6m0s")]
    [InlineData(3_723_000, "1h2m3s")]
    public void Resets_are_written_as_OpenAI_writes_them(int milliseconds, string expected) =>
        Assert.Equal(expected, Appliance.Api.Quotas.RateLimitHeaders.Duration(TimeSpan.FromMilliseconds(milliseconds)));

    private static string Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.Single() : throw new Xunit.Sdk.XunitException($"no {name} header");

    [Fact]
    public async Task A_users_own_token_and_every_api_key_issued_to_the_user_draw_on_one_quota()
    {
        await using var running = await Start(null, "--Quotas:User:RequestsPerMinute=3", "--Identity:ApiKeys:Enabled=true", "--Identity:ApiKeys:ServiceOwners:0=svc-report");
        var keys = new List<HttpClient>();
        foreach (var name in new[] { "nightly", "hourly" })
        {
            using var issue = await running.Http.PostAsJsonAsync("/admin/api-keys", new { owner = "svc-report", name, roles = new[] { "appliance-user" } });
            Assert.Equal(HttpStatusCode.Created, issue.StatusCode);
            keys.Add(running.ClientWith(JsonDocument.Parse(await issue.Content.ReadAsStringAsync()).RootElement.GetProperty("key").GetString()));
        }

        using var own = running.ClientWith(running.MintToken("svc-report", ["appliance-user"]));
        await AwayFromTheMinuteBoundary();
        Assert.Equal(HttpStatusCode.OK, (await own.PostAsync("/v1/chat/completions", Chat())).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await keys[0].PostAsync("/v1/chat/completions", Chat())).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await keys[1].PostAsync("/v1/chat/completions", Chat())).StatusCode);
        using var refused = await keys[0].PostAsync("/v1/chat/completions", Chat()); // a key of its own would have a fresh quota

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Contains("requests per minute for user 'svc-report'", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        keys.ForEach(k => k.Dispose());
    }

    [Fact]
    public async Task A_team_out_of_tokens_for_the_day_stays_out_after_a_restart()
    {
        var data = _root.Combine("data");
        string[] quota = ["--Quotas:Team:TokensPerDay=10"];
        await using (var first = await Start(data, quota))
        {
            using var ada = first.ClientWith(first.MintToken("ada", ["appliance-user"], groups: ["/research"]));
            Assert.Equal(HttpStatusCode.OK, (await ada.PostAsync("/v1/chat/completions", Chat(maxTokens: 8))).StatusCode); // prompt + 8 > 10
            using var refused = await ada.PostAsync("/v1/chat/completions", Chat());
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.Contains("tokens per day for team '/research'", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        await using var restarted = await Start(data, quota);
        using var colleague = restarted.ClientWith(restarted.MintToken("bob", ["appliance-user"], groups: ["/research"]));
        using var stillRefused = await colleague.PostAsync("/v1/chat/completions", Chat());
        Assert.Equal(HttpStatusCode.TooManyRequests, stillRefused.StatusCode);
        Assert.Equal("tokens_per_day", stillRefused.Headers.GetValues("X-Quota-Name").Single());
        // It resets tomorrow: the SDKs' own retries would only be refused (and audited) again. (In the day's last
        // minute the reset is near enough for a retry.)
        if (stillRefused.Headers.RetryAfter?.Delta > TimeSpan.FromSeconds(60))
        {
            Assert.Equal("false", stillRefused.Headers.GetValues("x-should-retry").Single());
        }
        using var outsider = restarted.ClientWith(restarted.MintToken("eve", ["appliance-user"], groups: ["/sales"]));
        Assert.Equal(HttpStatusCode.OK, (await outsider.PostAsync("/v1/chat/completions", Chat())).StatusCode);
    }

    [Fact]
    public async Task A_caller_in_several_groups_is_counted_under_one_team_whatever_order_its_tokens_list_them()
    {
        // Tokens may list a user's groups in any order. The team is a group the administrators configured (a team
        // quota here) before the others, then the first in ordinal order: the same user is never charged to one team by
        // one token and another by the next, and a team quota set for a group applies to its members.
        await using var running = await Start(null, "--Quotas:Teams:/teams/radiology:TokensPerDay=10");
        using var listedFirst = running.ClientWith(running.MintToken("ada", ["appliance-user"], groups: ["/all-staff", "/teams/radiology", "/teams/research"]));
        using var listedLast = running.ClientWith(running.MintToken("ada", ["appliance-user"], groups: ["/teams/research", "/teams/radiology", "/all-staff"]));
        using var unconfigured = running.ClientWith(running.MintToken("eve", ["appliance-user"], groups: ["/teams/research", "/all-staff"]));
        Assert.Equal(HttpStatusCode.OK, (await listedLast.PostAsync("/v1/chat/completions", Chat(maxTokens: 8))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await unconfigured.PostAsync("/v1/chat/completions", Chat())).StatusCode);

        using var refused = await listedFirst.PostAsync("/v1/chat/completions", Chat());

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Contains("tokens per day for team '/teams/radiology'", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var auditor = running.ClientWith(running.MintToken("bob", ["appliance-auditor"]));
        Assert.Equal(["/teams/radiology"], await TeamsRecordedAsync(auditor, "ada"));
        Assert.Equal(["/all-staff"], await TeamsRecordedAsync(auditor, "eve"));
    }

    [Fact]
    public async Task A_team_quota_named_without_keycloaks_leading_slash_applies_to_the_group()
    {
        // Keycloak's group claim carries the full path (/radiology); the administrator wrote the group's name. It used
        // to never apply.
        await using var running = await Start(null, "--Quotas:Teams:radiology:TokensPerDay=10");
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"], groups: ["/all-staff", "/radiology"]));
        Assert.Equal(HttpStatusCode.OK, (await ada.PostAsync("/v1/chat/completions", Chat(maxTokens: 8))).StatusCode);

        using var refused = await ada.PostAsync("/v1/chat/completions", Chat());

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Contains("tokens per day for team 'radiology'", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Only_groups_under_the_team_prefix_are_teams_and_a_team_setting_outside_it_stops_start_up()
    {
        await using (var running = await Start(null, "--Audit:TeamPrefix=/teams/"))
        {
            using var eve = running.ClientWith(running.MintToken("eve", ["appliance-user"], groups: ["/all-staff", "/teams/research"]));
            Assert.Equal(HttpStatusCode.OK, (await eve.PostAsync("/v1/chat/completions", Chat())).StatusCode);
            using var auditor = running.ClientWith(running.MintToken("bob", ["appliance-auditor"]));
            Assert.Equal(["/teams/research"], await TeamsRecordedAsync(auditor, "eve"));
        }

        var model = _root.Combine("tiny");
        await using var app = Appliance.Host.ApplianceApp.Create(["--urls=http://127.0.0.1:0", "--environment=Development", $"--Models:tiny:Path={model}",
            "--Appliance:BuiltInEmbeddings=false", "--Audit:TeamPrefix=/teams/", "--Quotas:Teams:radiology:TokensPerDay=10"]);
        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => app.StartAsync());
        Assert.Contains("Quotas:Teams:radiology names no team", error.Message, StringComparison.Ordinal);
    }

    private static async Task<List<string?>> TeamsRecordedAsync(HttpClient auditor, string user)
    {
        using var events = JsonDocument.Parse(await auditor.GetStringAsync($"/audit/events?user={user}&kind=request.completed&limit=100"));
        return [.. events.RootElement.GetProperty("data").EnumerateArray().Select(e => e.GetProperty("team").GetString()).Distinct()];
    }

    [Fact]
    public async Task Concurrent_streams_are_limited_per_user()
    {
        await using var running = await Start(null, "--Quotas:User:ConcurrentStreams=1", "--Limits:MaxTokens=4000");
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"]));
        using var longStream = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Chat(maxTokens: 3000, stream: true) };
        using var streaming = await ada.SendAsync(longStream, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, streaming.StatusCode);

        using var second = await ada.PostAsync("/v1/chat/completions", Chat());
        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        Assert.Equal("concurrent_streams", second.Headers.GetValues("X-Quota-Name").Single());
    }

    [Fact]
    public async Task Nodes_sharing_postgresql_count_each_others_tokens()
    {
        using var database = new TestPostgres();
        string[] shared = ["--Quotas:User:TokensPerDay=10", "--Quotas:RefreshInterval=00:00:00.2", "--Audit:Store=postgresql", $"--Audit:PostgresConnectionString={database.ConnectionString}"];
        await using var node1 = await Start(null, [.. shared, "--Audit:NodeId=node-1"]);
        await using var node2 = await Start(null, [.. shared, "--Audit:NodeId=node-2"]);
        using var onNode1 = node1.ClientWith(node1.MintToken("ada", ["appliance-user"]));
        using var onNode2 = node2.ClientWith(node2.MintToken("ada", ["appliance-user"]));

        Assert.Equal(HttpStatusCode.OK, (await onNode1.PostAsync("/v1/chat/completions", Chat(maxTokens: 8))).StatusCode);
        var deadline = DateTime.UtcNow.AddSeconds(15);
        HttpStatusCode status;
        do
        {
            await Task.Delay(250);
            using var attempt = await onNode2.PostAsync("/v1/chat/completions", Chat(maxTokens: 1));
            status = attempt.StatusCode;
        }
        while (status == HttpStatusCode.OK && DateTime.UtcNow < deadline);

        Assert.Equal(HttpStatusCode.TooManyRequests, status); // node 2 learned node 1's usage from the shared audit store
    }

    public void Dispose() => _root.Dispose();

    /// <summary>
    /// Minute quotas reset on the minute: called just before a test's counted requests (after the host started, which
    /// can take many seconds on a loaded machine), so that they fall within one minute with 20 s to spare.
    /// </summary>
    private static async Task AwayFromTheMinuteBoundary()
    {
        var second = DateTime.UtcNow.Second;
        if (second >= 40)
        {
            await Task.Delay(TimeSpan.FromSeconds(61 - second));
        }
    }

    private async Task<RunningAppliance> Start(string? dataFolder, params string[] args)
    {
        var model = _root.Combine("tiny");
        if (!Directory.Exists(model))
        {
            SyntheticModelFolder.Write(SyntheticModelSpec.Tiny with { ContextLength = 4096 }, model);
        }

        string[] data = dataFolder is null ? [] : [$"--Appliance:DataFolder={dataFolder}"];
        var running = await RunningAppliance.StartAsync([$"--Models:tiny:Path={model}", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None", .. data, .. args]);
        await running.WaitUntilReadyAsync();
        return running;
    }

    private static StringContent Chat(int maxTokens = 2, bool stream = false) => new(
        $$"""{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":{{maxTokens}},"ignore_eos":true,"stream":{{(stream ? "true" : "false")}}}""",
        Encoding.UTF8, "application/json");
}
