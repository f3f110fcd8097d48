using System.Net;
using System.Text;
using System.Text.Json;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Audit;

/// <summary>Every access ends up in the audit chain with who, what and how much; auditors read, verify and export it.</summary>
public sealed class AuditTrailTests : IDisposable
{
    private readonly TempFolder _root = new("audit-trail");

    [Fact]
    public async Task A_chat_request_is_recorded_as_accepted_then_completed_with_who_what_and_how_much()
    {
        await using var running = await StartAsync();
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"]));
        using var chat = await Chat(ada, "open", stream: true);
        Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        await chat.Content.ReadAsStringAsync();

        var entries = await Entries(running, "?user=ada");
        var accepted = entries.Single(e => e.GetProperty("kind").GetString() == "request.accepted");
        var completed = entries.Single(e => e.GetProperty("kind").GetString() == "request.completed");
        Assert.True(accepted.GetProperty("seq").GetInt64() < completed.GetProperty("seq").GetInt64());
        Assert.Equal(accepted.GetProperty("requestId").GetString(), completed.GetProperty("requestId").GetString());
        Assert.Equal("open", completed.GetProperty("model").GetString());
        Assert.StartsWith("sha256:", completed.GetProperty("modelDigest").GetString(), StringComparison.Ordinal);
        Assert.Equal("public", completed.GetProperty("classification").GetString());
        Assert.Equal(200, completed.GetProperty("status").GetInt32());
        Assert.Equal("length", completed.GetProperty("finishReason").GetString());
        Assert.Equal(3, completed.GetProperty("completionTokens").GetInt32());
        Assert.True(completed.GetProperty("promptTokens").GetInt32() > 0);
        Assert.True(completed.GetProperty("ttftMs").GetDouble() > 0);
        Assert.True(completed.GetProperty("queueMs").GetDouble() >= 0);
        Assert.True(completed.GetProperty("queueMs").GetDouble() <= completed.GetProperty("ttftMs").GetDouble());
        Assert.Equal("127.0.0.1", completed.GetProperty("sourceIp").GetString());
        Assert.Equal("appliance-cli", completed.GetProperty("client").GetString());
        Assert.Contains("appliance-user", completed.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
    }

    [Fact]
    public async Task Refusals_are_recorded_with_their_reason()
    {
        await using var running = await StartAsync();
        using (var anonymous = running.ClientWith(null))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await Chat(anonymous, "open")).StatusCode);
        }

        using (var forged = running.ClientWith(running.MintToken("eve", ["appliance-user"], lifetime: TimeSpan.FromHours(1), issuedAt: DateTimeOffset.UtcNow.AddHours(-2))))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await Chat(forged, "open")).StatusCode);
        }

        using (var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"])))
        {
            Assert.Equal(HttpStatusCode.Forbidden, (await Chat(ada, "secret")).StatusCode);
            Assert.Equal(HttpStatusCode.Forbidden, (await ada.GetAsync("/audit/events")).StatusCode); // no auditor role
        }

        var refused = await Entries(running, "?outcome=refused");
        Assert.Contains(refused, e => e.GetProperty("status").GetInt32() == 401 && e.GetProperty("detail").GetString() == "no credential");
        Assert.Contains(refused, e => e.GetProperty("status").GetInt32() == 401 && e.GetProperty("detail").GetString() == "token refused: expired");
        Assert.Contains(refused, e => e.GetProperty("status").GetInt32() == 403 && e.GetProperty("username").GetString() == "ada"
            && e.GetProperty("model").GetString() == "secret" && e.GetProperty("detail").GetString()!.Contains("clearance", StringComparison.Ordinal));
        Assert.Contains(refused, e => e.GetProperty("endpoint").GetString() == "/audit/events" && e.GetProperty("status").GetInt32() == 403);
    }

    [Fact]
    public async Task The_chain_verifies_reading_it_is_audited_and_an_export_verifies_offline_with_the_cli()
    {
        await using var running = await StartAsync();
        using (var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"])))
        {
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(HttpStatusCode.OK, (await Chat(ada, "open")).StatusCode);
            }
        }

        using var verify = JsonDocument.Parse(await running.Http.GetStringAsync("/audit/verify"));
        Assert.True(verify.RootElement.GetProperty("ok").GetBoolean(), verify.RootElement.GetRawText());
        Assert.Contains(await Entries(running, "?kind=audit.read"), e => e.GetProperty("endpoint").GetString() == "/audit/verify");

        var export = _root.Combine("export.jsonl");
        await File.WriteAllBytesAsync(export, await running.Http.GetByteArrayAsync("/audit/export"));
        var key = _root.Combine("audit.pub.pem");
        await File.WriteAllTextAsync(key, await running.Http.GetStringAsync("/audit/public-key"));

        var (ok, output) = await ApplianceCli.RunAsync("audit", "verify", "--file", export, "--public-key", key);
        Assert.True(ok == 0, output);
        Assert.StartsWith("OK:", output, StringComparison.Ordinal);

        // From a pipe (as with --file <(zcat export.jsonl.gz)), which cannot be read twice.
        var fifo = _root.Combine("export.fifo");
        System.Diagnostics.Process.Start("mkfifo", [fifo])!.WaitForExit();
        var feeding = Task.Run(async () => await File.WriteAllBytesAsync(fifo, await File.ReadAllBytesAsync(export)));
        var (pipedOk, pipedOutput) = await ApplianceCli.RunAsync("audit", "verify", "--file", fifo, "--public-key", key);
        await feeding;
        Assert.True(pipedOk == 0, pipedOutput);
        Assert.Equal(output, pipedOutput);

        // One changed byte in the export: the verifier names the entry.
        var lines = await File.ReadAllLinesAsync(export);
        var changed = Array.FindIndex(lines, l => l.Contains("\"status\":200", StringComparison.Ordinal));
        lines[changed] = lines[changed].Replace("\"status\":200", "\"status\":201", StringComparison.Ordinal);
        await File.WriteAllLinesAsync(export, lines);
        var (broken, report) = await ApplianceCli.RunAsync("audit", "verify", "--file", export, "--public-key", key);
        Assert.True(broken == 1, report);
        Assert.Contains($"BROKEN at entry {changed + 1} (Modified)", report, StringComparison.Ordinal);
    }

    [Fact]
    public async Task When_the_audit_store_is_full_requests_are_refused_and_none_is_served_unrecorded()
    {
        await using var running = await StartAsync("--Audit:MaxSizeBytes=65536");
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"]));
        var served = 0;
        HttpResponseMessage? refusal = null;
        for (var i = 0; i < 2000 && refusal is null; i++)
        {
            var response = await Chat(ada, "open");
            if (response.StatusCode == HttpStatusCode.OK)
            {
                served++;
                response.Dispose();
            }
            else
            {
                refusal = response;
            }
        }

        Assert.NotNull(refusal);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refusal.StatusCode);
        Assert.Contains("\"code\":\"audit_unavailable\"", await refusal.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        refusal.Dispose();
        using (var ready = await running.Http.GetAsync("/health/ready"))
        {
            // Not ready: the load balancer sends the requests to a node that can record them.
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            Assert.Contains("the audit log could not record", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        var accepted = 0;
        var database = Path.Combine(_root.Combine("data"), "audit", "audit.db");
        using (var store = Appliance.Audit.Stores.SqliteAuditStore.OpenReadOnly(database))
        {
            accepted = store.Chain(store.Nodes().Single()).Count(e => e.Record.Kind == "request.accepted" && e.Record.Username == "ada");
        }

        Assert.True(served > 0);
        Assert.Equal(served, accepted); // every answered request has its accepted record; the refused one has none
    }

    [Fact]
    public async Task Usage_is_summed_per_day_by_user_team_and_model_for_chargeback()
    {
        await using var running = await StartAsync();
        using (var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"], groups: ["/research"])))
        using (var bob = running.ClientWith(running.MintToken("bob", ["appliance-user"], groups: ["/finance"])))
        {
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(HttpStatusCode.OK, (await Chat(ada, "open")).StatusCode);
            }

            Assert.Equal(HttpStatusCode.OK, (await Chat(bob, "open")).StatusCode);
            Assert.Equal(HttpStatusCode.Forbidden, (await Chat(bob, "secret")).StatusCode); // refused: no usage
        }

        var today = DateTime.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        var byTeam = await Usage(running, "team");
        // Only model requests count: the auditor's own reads of /audit do not.
        Assert.Equal([("/finance", 1L, 3L), ("/research", 3L, 9L)],
            byTeam.Select(r => (r.GetProperty("key").GetString(), r.GetProperty("requests").GetInt64(), r.GetProperty("completionTokens").GetInt64())));
        Assert.All(byTeam, r => Assert.Equal(today, r.GetProperty("day").GetString()));
        Assert.Contains(await Usage(running, "user"), r => r.GetProperty("key").GetString() == "ada" && r.GetProperty("requests").GetInt64() == 3);

        using var invalid = await running.Http.GetAsync("/audit/usage?by=planet");
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        Assert.Contains("\"by\"", await invalid.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Retention_removes_old_sealed_segments_and_the_chain_still_verifies()
    {
        await using var running = await StartAsync("--Audit:Retention=00:00:02", "--Audit:RetentionCheckInterval=00:00:00.200", "--Audit:CheckpointEvery=4");
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"]));
        for (var i = 0; i < 6; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await Chat(ada, "open")).StatusCode);
        }

        var deadline = DateTime.UtcNow.AddSeconds(20);
        JsonElement verdict;
        do
        {
            await Task.Delay(250);
            using var verify = JsonDocument.Parse(await running.Http.GetStringAsync("/audit/verify"));
            verdict = verify.RootElement.Clone(); // one chain: its fields are at the top as well
        }
        while (!verdict.GetProperty("message").GetString()!.Contains("removed by retention", StringComparison.Ordinal) && DateTime.UtcNow < deadline);

        Assert.True(verdict.GetProperty("ok").GetBoolean(), verdict.GetRawText());
        Assert.Contains("removed by retention", verdict.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Contains(await Entries(running, "?kind=audit.retention"), e => e.GetProperty("detail").GetString()!.StartsWith("removed ", StringComparison.Ordinal));

        var export = _root.Combine("retained.jsonl");
        await File.WriteAllBytesAsync(export, await running.Http.GetByteArrayAsync("/audit/export"));
        var key = _root.Combine("retained.pub.pem");
        await File.WriteAllTextAsync(key, await running.Http.GetStringAsync("/audit/public-key"));
        var (ok, output) = await ApplianceCli.RunAsync("audit", "verify", "--file", export, "--public-key", key);
        Assert.True(ok == 0, output);
    }

    public void Dispose() => _root.Dispose();

    private static async Task<List<JsonElement>> Usage(RunningAppliance running, string by)
    {
        using var document = JsonDocument.Parse(await running.Http.GetStringAsync($"/audit/usage?by={by}"));
        return [.. document.RootElement.GetProperty("data").EnumerateArray().Select(e => e.Clone())];
    }

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
            $"--Models:secret:Path={folder}", "--Models:secret:Classification=restricted",
            "--Appliance:BuiltInEmbeddings=false", $"--Appliance:DataFolder={_root.Combine("data")}", "--Logging:LogLevel:Default=None",
            .. extra,
        ]);
        await running.WaitUntilReadyAsync();
        return running;
    }

    private static async Task<List<JsonElement>> Entries(RunningAppliance running, string query)
    {
        using var document = JsonDocument.Parse(await running.Http.GetStringAsync("/audit/events" + query + (query.Length > 0 ? "&" : "?") + "limit=1000"));
        return [.. document.RootElement.GetProperty("data").EnumerateArray().Select(e => e.Clone())];
    }

    private static Task<HttpResponseMessage> Chat(HttpClient client, string model, bool stream = false) =>
        client.PostAsync("/v1/chat/completions", new StringContent(
            $$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi"}],"max_tokens":3,"ignore_eos":true,"stream":{{(stream ? "true" : "false")}}}""",
            Encoding.UTF8, "application/json"));
}
