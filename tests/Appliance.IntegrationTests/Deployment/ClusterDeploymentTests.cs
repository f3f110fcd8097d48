using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Appliance.Tests.Common;
using Npgsql;
using Xunit.Abstractions;

namespace Appliance.IntegrationTests.Deployment;

/// <summary>
/// ansible/ run for real against booted Debian machines: site.yml builds a two-node cluster behind HAProxy with the
/// audit log in PostgreSQL, check mode changes nothing, models.yml adds a model live, a second site.yml run changes
/// only what a changed setting needs and restarts the nodes in turn, upgrade.yml and rollback.yml roll releases, all
/// under steady load without a failed request; the nodes' firewall lets the appliance connect only to the realm, the
/// database and the SIEM through a full scenario (console sign-in through HAProxy included), and losing a node keeps
/// the service up. A third node joins with site.yml under load: the load balancer and the database take it in by
/// reload, the running nodes are left alone, and API keys and usage are the cluster's. The steps build on one lab and
/// run in order.
/// </summary>
[Trait("Category", "Slow")]
[Collection(DeploymentCollection.Name)]
[TestCaseOrderer(StepOrderer.Name, StepOrderer.Assembly)]
public sealed class ClusterDeploymentTests(AnsibleLab lab, ITestOutputHelper output) : IClassFixture<AnsibleLab>
{
    private const string LabModel = "lab-tiny";

    [Fact, Step(1)]
    public async Task Site_builds_a_cluster_that_serves_chat_through_the_load_balancer()
    {
        // A first install of several nodes, as ansible/README.md suggests: all nodes at once.
        var run = await lab.PlaybookAsync("site.yml", "-e", "appliance_serial=100%");
        output.WriteLine(run.SlowestTasks);
        Assert.True(run.ExitCode == 0, run.Output);

        using var anonymous = lab.BalancedClient(null);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/health/ready")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/v1/models")).StatusCode);

        using var client = lab.BalancedClient(await lab.Identity.ClientCredentialsTokenAsync("report-generator"));
        for (var request = 0; request < 12; request++)
        {
            using var chat = await Chat(client, "demo");
            Assert.True(chat.StatusCode == HttpStatusCode.OK, await chat.Content.ReadAsStringAsync());
            using var answer = JsonDocument.Parse(await chat.Content.ReadAsStringAsync());
            Assert.Equal(4, answer.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        }

        // Least-connections with both nodes up: each took some, and each recorded the caller's own address, not HAProxy's.
        var served = await CompletedChatsByNode();
        Assert.True(served.GetValueOrDefault(AnsibleLab.Node1) > 0 && served.GetValueOrDefault(AnsibleLab.Node2) > 0, string.Join(", ", served));
        Assert.Equal([lab.Gateway], await SourceAddresses());

        // Through any node, usage counts every node's chats (one chain per node in PostgreSQL).
        using var auditor = lab.BalancedClient(await lab.Identity.ClientCredentialsTokenAsync("compliance-bot"));
        using (var usage = JsonDocument.Parse(await auditor.GetStringAsync("/audit/usage?by=model")))
        {
            Assert.Equal(served.Values.Sum(), usage.RootElement.GetProperty("data").EnumerateArray()
                .Where(r => r.GetProperty("key").GetString() == "demo").Sum(r => r.GetProperty("requests").GetInt64()));
        }

        // The console sticks to a node by cookie, the API does not; the nodes share one key ring, encrypted at rest.
        using var console = await anonymous.GetAsync("/console/login");
        Assert.Contains(console.Headers.GetValues("Set-Cookie"), c => c.StartsWith("appliance_node=", StringComparison.Ordinal));
        using var api = await anonymous.GetAsync("/health/ready");
        Assert.DoesNotContain(api.Headers.TryGetValues("Set-Cookie", out var cookies) ? cookies : [], c => c.StartsWith("appliance_node=", StringComparison.Ordinal));
        await using var database = new NpgsqlConnection(lab.PostgresConnectionString);
        await database.OpenAsync();
        await using var keys = new NpgsqlCommand("SELECT xml FROM data_protection_keys", database);
        var ring = new List<string>();
        await using (var reader = await keys.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                ring.Add(reader.GetString(0));
            }
        }

        Assert.Contains("EncryptedData", Assert.Single(ring), StringComparison.Ordinal);

        // HAProxy reaches the nodes over mutual TLS with the cluster CA: a node answers HTTPS with its certificate to a
        // client with the balancer's certificate, and nothing to one without, or to plain HTTP around the balancer.
        foreach (var node in new[] { AnsibleLab.Node1, AnsibleLab.Node2 })
        {
            using var direct = lab.NodeClient(node, null);
            Assert.Equal(HttpStatusCode.OK, (await direct.GetAsync("/health/live")).StatusCode);
            using var stranger = lab.NodeClient(node, null, asBalancer: false);
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => stranger.GetAsync("/health/live"));
            using var plain = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            await Assert.ThrowsAnyAsync<Exception>(() => plain.GetAsync($"http://{lab.Address(node)}:8080/health/live"));
        }
    }

    [Fact, Step(2)]
    public async Task The_installed_unit_is_hardened_and_passes_systemd_analyze()
    {
        var (verified, output) = await lab.SshAsync(AnsibleLab.Node1, "systemd-analyze verify /etc/systemd/system/appliance.service");
        Assert.True(verified == 0, output);
        var (_, properties) = await lab.SshAsync(AnsibleLab.Node1,
            "systemctl show appliance -p Type -p User -p NoNewPrivileges -p ProtectSystem -p PrivateTmp -p ReadWritePaths -p ActiveState -p ExecStart");
        foreach (var expected in new[] { "Type=notify", "User=appliance", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "ReadWritePaths=/var/lib/appliance", "ActiveState=active" })
        {
            Assert.Contains(expected, properties, StringComparison.Ordinal);
        }

        Assert.Contains($"/opt/appliance/current/bin/Appliance.Host", properties, StringComparison.Ordinal);
        var (_, settings) = await lab.SshAsync(AnsibleLab.Node1, "stat -c '%U:%G %a' /etc/appliance/appsettings.json /etc/appliance/checkpoint-key.pem");
        Assert.Equal("root:appliance 640\nroot:appliance 640", settings.Trim());

        // The database lets in the two nodes and the auditor's workstation (the test host), by password, and no one else.
        var (_, hba) = await lab.SshAsync(AnsibleLab.Balancer, "grep -hE '^host[[:space:]]+appliance[[:space:]]' /etc/postgresql/*/main/pg_hba.conf");
        var sources = hba.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries)).ToList();
        Assert.All(sources, fields => Assert.Equal(["host", "appliance", "appliance", fields[3], "scram-sha-256"], fields));
        Assert.Equal(new[] { lab.Address(AnsibleLab.Node1), lab.Address(AnsibleLab.Node2), lab.Gateway }.Select(a => a + "/32").Order(), sources.Select(f => f[3]).Order());
    }

    /// <remarks>
    /// A real second run is step 5's: with one setting changed, it may change that setting and restart the nodes, and
    /// nothing else anywhere.
    /// </remarks>
    [Fact, Step(3)]
    public async Task A_check_run_changes_nothing()
    {
        // All nodes at once: whether a run would change something does not depend on how many nodes it takes in turn.
        var check = await lab.PlaybookAsync("site.yml", "--check", "--diff", "-e", "appliance_serial=100%");
        output.WriteLine(check.SlowestTasks);
        Assert.True(check.ExitCode == 0, check.Output);
        Assert.Equal(4, check.Recap.Count); // localhost, lb, node1, node2
        Assert.All(check.Recap, host => Assert.True(host.Value.Changed == 0, $"{host.Key} would change: {check.ChangedTasks}"));
    }

    [Fact, Step(4)]
    public async Task Models_yml_adds_a_verified_model_to_every_node_without_a_restart()
    {
        var folder = Path.Combine(Path.GetDirectoryName(lab.Inventory)!, "..", "models", LabModel);
        var (synth, synthLog) = await ApplianceCli.RunAsync("model", "synth", "--out", folder, "--size", "tiny");
        Assert.True(synth == 0, synthLog);
        var (manifest, manifestLog) = await ApplianceCli.RunAsync("model", "manifest", folder);
        Assert.True(manifest == 0, manifestLog);
        var before = await MainPids();

        lab.Variables["appliance_models"] = new JsonObject
        {
            [LabModel] = new JsonObject { ["bundle"] = folder, ["settings"] = new JsonObject { ["Aliases"] = new JsonArray("lab"), ["MaxBatchSize"] = 8 } },
        };
        lab.WriteVariables();

        // A node whose disk would keep less than the margin after the copy gets nothing, and the run says why.
        var full = await lab.PlaybookAsync("models.yml", "-e", "models_free_space_margin=999999999999999999");
        Assert.True(full.ExitCode != 0 && full.Output.Contains("Nothing was copied", StringComparison.Ordinal), full.Output);
        Assert.NotEqual(0, (await lab.SshAsync(AnsibleLab.Node1, $"test -e /var/lib/appliance/models/{LabModel}")).ExitCode);

        var run = await lab.PlaybookAsync("models.yml");
        output.WriteLine(run.SlowestTasks);
        Assert.True(run.ExitCode == 0, run.Output);

        var token = await lab.Identity.ClientCredentialsTokenAsync("report-generator");
        foreach (var node in new[] { AnsibleLab.Node1, AnsibleLab.Node2 })
        {
            using var direct = lab.NodeClient(node, token);
            Assert.Contains($"\"id\":\"{LabModel}\"", await direct.GetStringAsync("/v1/models"), StringComparison.Ordinal);
            using var chat = await Chat(direct, "lab");
            Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        }

        Assert.Equal(before, await MainPids());
        var again = await lab.PlaybookAsync("models.yml");
        Assert.All(again.Recap, host => Assert.True(host.Value.Changed == 0, $"{host.Key} changed: {again.ChangedTasks}"));
        // A node whose manifest is the control node's and whose files match it is not copied to at all.
        Assert.Equal([AnsibleLab.Node1, AnsibleLab.Node2], again.SkippedOn("Copy the model folders"));

        // A copy changed behind the role's back (a file altered, one added) is put right on the next run and reloaded
        // there. Node 2 is left as a run that stopped after taking it out leaves it: out of HAProxy, drained, marked;
        // the next run brings it back (and has nothing to load there).
        var models = "/var/lib/appliance/models";
        await lab.SshAsync(AnsibleLab.Node1, $"echo >> {models}/{LabModel}/tokenizer_config.json && touch {models}/{LabModel}/stray.bin");
        Assert.Equal(string.Empty, await HaproxyCommand($"set server appliance/{AnsibleLab.Node2} state maint"));
        using (var stranded = lab.NodeClient(AnsibleLab.Node2, await lab.Identity.ClientCredentialsTokenAsync("appliance-operator")))
        {
            Assert.Equal(HttpStatusCode.OK, (await stranded.PostAsync("/admin/drain?timeout=5", null)).StatusCode);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await stranded.GetAsync("/health/ready")).StatusCode);
        }

        await lab.SshAsync(AnsibleLab.Node2, $"touch {models}/.out-of-service");
        var repaired = await lab.PlaybookAsync("models.yml");
        Assert.True(repaired.ExitCode == 0, repaired.Output);
        Assert.Contains("Copy the model folders", repaired.ChangedTaskNamesOn(AnsibleLab.Node1));
        Assert.Contains($"Load {LabModel}", repaired.ChangedTaskNamesOn(AnsibleLab.Node1));
        Assert.Equal([AnsibleLab.Node2], repaired.SkippedOn("Copy the model folders"));
        Assert.DoesNotContain($"Load {LabModel}", repaired.ChangedTaskNamesOn(AnsibleLab.Node2));
        Assert.Contains("Admit requests again", repaired.ChangedTaskNamesOn(AnsibleLab.Node2));
        var servers = await HaproxyCommand("show servers state appliance");
        foreach (var node in new[] { AnsibleLab.Node1, AnsibleLab.Node2 })
        {
            var (state, stateLog) = await lab.SshAsync(node,
                $"/opt/appliance/current/bin/appliance model verify {models}/{LabModel} && test ! -e {models}/{LabModel}/stray.bin && ! ls -A {models} | grep -q '^[.]'");
            Assert.True(state == 0, $"{node}: {stateLog}");
            using var direct = lab.NodeClient(node, null);
            Assert.Equal(HttpStatusCode.OK, (await direct.GetAsync("/health/ready")).StatusCode);
            Assert.True(AdministrativeState(servers, node) == 0, servers);
        }

        // A run whose inventory lost the model list (a group_vars file left out) would unload everything: it stops first.
        var emptied = await lab.PlaybookAsync("models.yml", "-e", "{\"appliance_models\": {}}");
        Assert.True(emptied.ExitCode != 0 && emptied.Output.Contains("would unload them all", StringComparison.Ordinal), emptied.Output);
        Assert.All(emptied.Recap, host => Assert.True(host.Value.Changed == 0, $"{host.Key} changed: {emptied.ChangedTasks}"));
        using (var still = lab.NodeClient(AnsibleLab.Node1, await lab.Identity.ClientCredentialsTokenAsync("report-generator")))
        {
            Assert.Contains($"\"id\":\"{LabModel}\"", await still.GetStringAsync("/v1/models"), StringComparison.Ordinal);
        }

        // A change the nodes refuse (more replicas than a node holds) stops the run with the reason, and the node it
        // stopped at is not left drained and out of the balancers: it serves the version it had.
        var settings = lab.Variables["appliance_models"]![LabModel]!["settings"]!.AsObject();
        settings["Replicas"] = 64;
        lab.WriteVariables();
        var refused = await lab.PlaybookAsync("models.yml");
        Assert.True(refused.ExitCode != 0 && refused.Output.Contains("keeps serving", StringComparison.Ordinal)
            && refused.Output.Contains("The node serves its other models again", StringComparison.Ordinal), refused.Output);
        var afterRefusal = await HaproxyCommand("show servers state appliance");
        foreach (var node in new[] { AnsibleLab.Node1, AnsibleLab.Node2 })
        {
            using var direct = lab.NodeClient(node, await lab.Identity.ClientCredentialsTokenAsync("report-generator"));
            Assert.Equal(HttpStatusCode.OK, (await direct.GetAsync("/health/ready")).StatusCode);
            Assert.True(AdministrativeState(afterRefusal, node) == 0, afterRefusal);
            using var chat = await Chat(direct, "lab");
            Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        }

        settings.Remove("Replicas");
        lab.WriteVariables();
        var corrected = await lab.PlaybookAsync("models.yml");
        Assert.True(corrected.ExitCode == 0, corrected.Output);

        // With models listed, a check run still changes nothing.
        var check = await lab.PlaybookAsync("models.yml", "--check", "--diff");
        Assert.True(check.ExitCode == 0, check.Output);
        Assert.All(check.Recap, host => Assert.True(host.Value.Changed == 0, $"{host.Key} would change: {check.ChangedTasks}"));
    }

    [Fact, Step(5)]
    public async Task A_settings_change_restarts_the_nodes_in_turn_without_failing_a_request()
    {
        var before = await MainPids();
        lab.Variables["appliance_settings"]!.AsObject()["Limits"] = new JsonObject { ["MaxTokens"] = 2048 };

        // First with an administrator's mistake that stops the run after node 1's settings were written (a firewall
        // source that is a host name): the restart handler never ran. The corrected run must restart node 1 although
        // its settings file no longer changes.
        var sources = lab.Variables["appliance_firewall_extra_sources"]!.DeepClone();
        lab.Variables["appliance_firewall_extra_sources"] = new JsonArray(lab.Gateway, "intranet.example");
        lab.WriteVariables();
        var refused = await lab.PlaybookAsync("site.yml");
        Assert.True(refused.ExitCode != 0 && refused.Output.Contains("never host names", StringComparison.Ordinal), refused.Output);
        var (_, pending) = await lab.SshAsync(AnsibleLab.Node1, "cat /opt/appliance/.restart-pending");
        Assert.Contains("must restart", pending, StringComparison.Ordinal);
        lab.Variables["appliance_firewall_extra_sources"] = sources;
        lab.WriteVariables();

        // With node 2 out of service, node 1 serves alone: its restart would fail every request, so the run stops
        // before taking it out.
        Assert.Equal(string.Empty, await HaproxyCommand($"set server appliance/{AnsibleLab.Node2} state maint"));
        var alone = await lab.PlaybookAsync("site.yml");
        Assert.Equal(string.Empty, await HaproxyCommand($"set server appliance/{AnsibleLab.Node2} state ready"));
        await WaitUntilServingAsync(AnsibleLab.Node1, AnsibleLab.Node2);
        Assert.True(alone.ExitCode != 0 && alone.Output.Contains($"sends requests to {AnsibleLab.Node1} alone", StringComparison.Ordinal), alone.Output);
        Assert.Equal(before, await MainPids());
        Assert.Equal(0, AdministrativeState(await HaproxyCommand("show servers state appliance"), AnsibleLab.Node1));
        Assert.Equal(1, (await lab.SshAsync(AnsibleLab.Node1, "test -e /opt/appliance/.out-of-service")).ExitCode);

        var (_, run) = await RunUnderLoadAsync("site.yml", "site.yml with a changed setting");

        // The setting and the restart it takes, in turn through the load balancer; every other task is idempotent.
        string[] expected = ["Write the node's settings", "Note that the node must restart to read the new files", "Restart for files an earlier run changed",
            "Take the node out of the load balancers", "Note that the node is out of service", "Restart with the new settings", "Put the node back into the load balancers",
            "Clear the note that the node is out of service", "Clear the note of a pending restart"];
        Assert.All(run.ChangedTaskNames, task => Assert.Contains(task, expected));
        Assert.Equal(0, run.Recap[AnsibleLab.Balancer].Changed);

        var after = await MainPids();
        Assert.All(before.Zip(after), pids => Assert.NotEqual(pids.First, pids.Second)); // node 1 too, from the note
        Assert.Contains("Restart for files an earlier run changed", run.ChangedTaskNamesOn(AnsibleLab.Node1));
        Assert.DoesNotContain("Write the node's settings", run.ChangedTaskNamesOn(AnsibleLab.Node1)); // written by the failed run
        Assert.DoesNotContain("Restart for files an earlier run changed", run.ChangedTaskNamesOn(AnsibleLab.Node2));
        Assert.Equal(1, (await lab.SshAsync(AnsibleLab.Node1, "test -e /opt/appliance/.restart-pending")).ExitCode);
        var (_, settings) = await lab.SshAsync(AnsibleLab.Node2, "cat /etc/appliance/appsettings.json");
        Assert.Equal(2048, JsonNode.Parse(settings)!["Limits"]!["MaxTokens"]!.GetValue<int>());

        // A misspelled setting: node 1 refuses to start, and the run stops there saying why (not systemd's bare error);
        // the node stays down (exit 78, no restart loop) and out of the load balancers while node 2 serves. The
        // corrected run brings it back.
        lab.Variables["appliance_settings"]!.AsObject()["Limits"] = new JsonObject { ["MaxTokens"] = 2048, ["MaxTokenz"] = 4096 };
        lab.WriteVariables();
        var misspelled = await lab.PlaybookAsync("site.yml");
        Assert.True(misspelled.ExitCode != 0 && misspelled.Output.Contains("did not start", StringComparison.Ordinal)
            && misspelled.Output.Contains("Limits:MaxTokenz is not a setting: did you mean Limits:MaxTokens?", StringComparison.Ordinal), misspelled.Output);
        Assert.Equal("failed", (await lab.SshAsync(AnsibleLab.Node1, "systemctl is-active appliance")).Output.Trim());
        Assert.Equal("78", (await lab.SshAsync(AnsibleLab.Node1, "systemctl show appliance -p ExecMainStatus --value")).Output.Trim());
        using (var serving = lab.NodeClient(AnsibleLab.Node2, null))
        {
            Assert.Equal(HttpStatusCode.OK, (await serving.GetAsync("/health/ready")).StatusCode);
        }

        lab.Variables["appliance_settings"]!.AsObject()["Limits"] = new JsonObject { ["MaxTokens"] = 2048 };
        lab.WriteVariables();
        var corrected = await lab.PlaybookAsync("site.yml");
        Assert.True(corrected.ExitCode == 0, corrected.Output);
        await WaitUntilServingAsync(AnsibleLab.Node1, AnsibleLab.Node2);
    }

    [Fact, Step(6)]
    public async Task Upgrade_and_rollback_under_steady_load_fail_no_request()
    {
        await BundleBuilds.WithNextAsync();

        lab.Variables["appliance_version"] = BundleBuilds.NextVersion;
        lab.WriteVariables();
        var (upgraded, _) = await RunUnderLoadAsync("upgrade.yml", "upgrade.yml");
        Assert.True(upgraded >= 20, $"only {upgraded} requests completed during the upgrade");

        Assert.Equal([BundleBuilds.NextVersion, BundleBuilds.NextVersion], await RunningVersions());
        Assert.Equal([BundleBuilds.Version, BundleBuilds.Version], await RunningVersions("previous"));

        await RunUnderLoadAsync("rollback.yml", "rollback.yml");

        Assert.Equal([BundleBuilds.Version, BundleBuilds.Version], await RunningVersions());
        lab.Variables["appliance_version"] = BundleBuilds.Version;
        lab.WriteVariables();

        // Node 2 as a settings run stopped after taking it out leaves it: out of HAProxy, owing a restart. upgrade.yml
        // to the release both run already must bring it back (restarted), not report success with it left out.
        var before = await MainPids();
        Assert.Equal(string.Empty, await HaproxyCommand($"set server appliance/{AnsibleLab.Node2} state maint"));
        await lab.SshAsync(AnsibleLab.Node2, "echo 'node2 left the load balancers' > /opt/appliance/.out-of-service && echo 'must restart' > /opt/appliance/.restart-pending");
        var again = await lab.PlaybookAsync("upgrade.yml");
        Assert.True(again.ExitCode == 0, again.Output);
        Assert.Contains("Restart on the new release", again.ChangedTaskNamesOn(AnsibleLab.Node2));
        Assert.DoesNotContain("Restart on the new release", again.ChangedTaskNamesOn(AnsibleLab.Node1));
        var after = await MainPids();
        Assert.Equal(before[0], after[0]);
        Assert.NotEqual(before[1], after[1]);
        Assert.Equal(0, AdministrativeState(await HaproxyCommand("show servers state appliance"), AnsibleLab.Node2));
        Assert.Equal(1, (await lab.SshAsync(AnsibleLab.Node2, "ls -A /opt/appliance | grep -q '^[.]'")).ExitCode); // no note left
        Assert.Equal([BundleBuilds.Version, BundleBuilds.Version], await RunningVersions());
    }

    [Fact, Step(7)]
    public async Task Both_nodes_audit_chains_in_postgresql_verify_with_the_cluster_key()
    {
        var keyFile = Path.Combine(Path.GetDirectoryName(lab.Inventory)!, "checkpoint-key.pub.pem");
        await File.WriteAllTextAsync(keyFile, lab.CheckpointPublicKeyPem);
        var served = await CompletedChatsByNode();
        foreach (var node in new[] { AnsibleLab.Node1, AnsibleLab.Node2 })
        {
            Assert.True(served.GetValueOrDefault(node) > 0, $"{node} recorded no chat");
            var (exit, output) = await ApplianceCli.RunAsync("audit", "verify", "--postgres", lab.PostgresConnectionString, "--node", node, "--public-key", keyFile);
            Assert.True(exit == 0, output);
            var verdict = System.Text.RegularExpressions.Regex.Match(output, @"OK: (\d+) entries, (\d+) checkpoints");
            Assert.True(verdict.Success && int.Parse(verdict.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) > 0, output);
            Assert.DoesNotContain("not checked", output, StringComparison.Ordinal);
        }
    }

    [Fact, Step(8)]
    public async Task A_full_scenario_connects_nowhere_but_the_realm_the_database_and_the_siem()
    {
        var forwardedBefore = lab.Syslog.BytesReceived;
        using (var client = lab.BalancedClient(await lab.Identity.ClientCredentialsTokenAsync("report-generator")))
        {
            using var chat = await Chat(client, LabModel);
            Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
            using var embeddings = await client.PostAsync("/v1/embeddings", new StringContent(
                """{"model":"all-minilm-l6-v2","input":"where does my data go?"}""", Encoding.UTF8, "application/json"));
            Assert.True(embeddings.StatusCode == HttpStatusCode.OK, await embeddings.Content.ReadAsStringAsync());
        }

        await ConsoleSessionSurvivesAlternatingNodesAndARestartAsync();

        using (var auditor = lab.BalancedClient(await lab.Identity.ClientCredentialsTokenAsync("compliance-bot")))
        {
            var export = await auditor.GetStringAsync("/audit/export");
            Assert.Contains($"\"{AnsibleLab.Node1}\"", export, StringComparison.Ordinal);
            Assert.Contains($"\"{AnsibleLab.Node2}\"", export, StringComparison.Ordinal);
        }

        var operatorToken = await lab.Identity.ClientCredentialsTokenAsync("appliance-operator");
        foreach (var node in new[] { AnsibleLab.Node1, AnsibleLab.Node2 })
        {
            using var direct = lab.NodeClient(node, operatorToken);
            using var reload = await direct.PostAsync($"/admin/models/{LabModel}/reload", null);
            Assert.True(reload.StatusCode == HttpStatusCode.OK, await reload.Content.ReadAsStringAsync());
        }

        // This scenario's audit entries reached the SIEM, through the same rules (embeddings were asked for only here).
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!lab.Syslog.Received.Contains("/v1/embeddings", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(500);
        }

        Assert.True(lab.Syslog.Received.Contains("/v1/embeddings", StringComparison.Ordinal),
            $"the embeddings request's audit entry was not forwarded to the syslog target ({lab.Syslog.BytesReceived - forwardedBefore} bytes since the scenario began)");

        // Since the firewall came up with the first site.yml, through every step of the lab and this scenario, the
        // appliance tried no other destination; and the nodes have no route out of the lab's network at all.
        foreach (var node in new[] { AnsibleLab.Node1, AnsibleLab.Node2 })
        {
            Assert.Equal(0, await lab.FirewallCounterAsync(node, "refused_egress"));
            var (routed, routes) = await lab.SshAsync(node, "ip -4 route show default; ip -6 route show default");
            Assert.True(routed == 0 && routes.Trim().Length == 0, $"{node} has a default route: {routes}");
        }

        // The rules do refuse: a host that is no load balancer cannot open the appliance port, and the appliance's
        // user cannot connect anywhere else (counted, then refused).
        foreach (var node in new[] { AnsibleLab.Node1, AnsibleLab.Node2 })
        {
            var refusedBefore = await lab.FirewallCounterAsync(node, "refused_inbound");
            using var outsider = lab.OutsiderClient(node);
            var refused = await Assert.ThrowsAnyAsync<HttpRequestException>(() => outsider.GetAsync("/health/live"));
            // Reset at the connection, by the firewall: without it the TLS handshake would be what failed.
            Assert.True(refused.InnerException is System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.ConnectionRefused }, refused.ToString());
            Assert.True(await lab.FirewallCounterAsync(node, "refused_inbound") > refusedBefore, $"{node} did not count the refused connection");
            var (exit, output) = await lab.SshAsync(node,
                $"runuser -u appliance -- python3 -c \"import socket; socket.create_connection(('{lab.Gateway}', 9), 3)\"");
            Assert.True(exit != 0, $"the appliance's user reached {lab.Gateway}:9 from {node}: {output}");
            Assert.True(await lab.FirewallCounterAsync(node, "refused_egress") > 0, $"{node} did not count the refused connection: {output}");
        }
    }

    [Fact, Step(9)]
    public async Task A_third_node_joins_through_site_yml_under_load_without_restarting_the_others()
    {
        var nodesBefore = await MainPids();
        var (_, servicesBefore) = await lab.SshAsync(AnsibleLab.Balancer, BalancerServicePids);
        Assert.True(servicesBefore.Contains("Id=haproxy.service", StringComparison.Ordinal) && servicesBefore.Contains("Id=postgresql@", StringComparison.Ordinal)
            && !servicesBefore.Contains("MainPID=0", StringComparison.Ordinal), servicesBefore);
        // An operator has taken node 2 out of the balancer (to look into something): HAProxy's reload must not put it back.
        Assert.Equal(string.Empty, await HaproxyCommand("set server appliance/node2 state maint"));
        lab.AddNode(AnsibleLab.Node3);
        // As ansible/README.md advises: the new node, the balancers and the database (a run without --limit would also
        // check every running node in turn, finding nothing to change: step 5 shows that, and it takes minutes here).
        var (_, run) = await RunUnderLoadAsync("site.yml", "site.yml --limit node3,loadbalancers,databases",
            "--limit", $"{AnsibleLab.Node3},loadbalancers,databases");

        // The running nodes kept serving (not restarted). The balancer and the database took node3 in by reloading
        // (same main processes), with nothing else changed there (tasks delegated to that machine included).
        Assert.Equal(nodesBefore, await MainPids());
        string[] balancerChanges = ["Let only the appliance nodes in, with a password", "Reload postgresql",
            "Write the configuration (checked by haproxy -c before it replaces the old one)", "Reload haproxy"];
        Assert.All(run.ChangedTaskNamesOn(AnsibleLab.Balancer), task => Assert.Contains(task, balancerChanges));
        var (_, servicesAfter) = await lab.SshAsync(AnsibleLab.Balancer, BalancerServicePids);
        Assert.Equal(servicesBefore.Trim(), servicesAfter.Trim());
        var servers = await HaproxyCommand("show servers state appliance");
        Assert.True(AdministrativeState(servers, AnsibleLab.Node2) == 1, servers); // still in maintenance, forced by the operator
        var console = await HaproxyCommand("show servers state appliance_console");
        Assert.True(AdministrativeState(console, AnsibleLab.Node2) == 2, console); // and the console's twin follows it
        Assert.True(AdministrativeState(servers, AnsibleLab.Node3) == 0 && AdministrativeState(servers, AnsibleLab.Node1) == 0, servers);
        Assert.Equal(string.Empty, await HaproxyCommand("set server appliance/node2 state ready"));
        var (_, hba) = await lab.SshAsync(AnsibleLab.Balancer, "grep -hE '^host[[:space:]]+appliance[[:space:]]' /etc/postgresql/*/main/pg_hba.conf");
        Assert.Contains($"{lab.Address(AnsibleLab.Node3)}/32", hba, StringComparison.Ordinal);

        // HAProxy sends node3 requests once its checks find it up (the steady load may have given it some already), and
        // a usage report through HAProxy is the sum of the three nodes' records, in total and per node.
        using (var client = lab.BalancedClient(await lab.Identity.ClientCredentialsTokenAsync("report-generator")))
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            for (var sent = 0; sent < 12 || ((await CompletedChatsByNode()).GetValueOrDefault(AnsibleLab.Node3) == 0 && DateTime.UtcNow < deadline); sent++)
            {
                using var chat = await Chat(client, LabModel);
                Assert.True(chat.StatusCode == HttpStatusCode.OK, await chat.Content.ReadAsStringAsync());
            }
        }

        var recorded = await UsageRecordsByNode();
        Assert.True(recorded.GetValueOrDefault(AnsibleLab.Node3) > 0, $"HAProxy sent node3 nothing: {string.Join(", ", recorded)}");
        using (var auditor = lab.BalancedClient(await lab.Identity.ClientCredentialsTokenAsync("compliance-bot")))
        {
            // Read until they agree, in case a last entry was still being written when the database was read.
            var settle = DateTime.UtcNow.AddSeconds(10);
            List<string> differences;
            while ((differences = await UsageDifferences(auditor)).Count > 0 && DateTime.UtcNow < settle)
            {
                await Task.Delay(500);
            }

            Assert.Empty(differences);
        }

        // An API key issued through node 1 works on the node that just joined and on node 2; revoked through node 3, it
        // fails there at once and on the others within their refresh interval (5 s).
        var operatorToken = await lab.Identity.ClientCredentialsTokenAsync("appliance-operator");
        string key, id;
        using (var issuer = lab.NodeClient(AnsibleLab.Node1, operatorToken))
        using (var issue = await issuer.PostAsync("/admin/api-keys", new StringContent(
            """{"owner":"svc-nightly","name":"lab-nightly","roles":["appliance-user"]}""", Encoding.UTF8, "application/json")))
        {
            var body = await issue.Content.ReadAsStringAsync();
            Assert.True(issue.StatusCode == HttpStatusCode.Created, body);
            using var issued = JsonDocument.Parse(body);
            key = issued.RootElement.GetProperty("key").GetString()!;
            id = issued.RootElement.GetProperty("apiKey").GetProperty("id").GetString()!;
        }

        foreach (var node in new[] { AnsibleLab.Node3, AnsibleLab.Node2 })
        {
            using var withKey = lab.NodeClient(node, key);
            Assert.Equal(HttpStatusCode.OK, await TryStatus(withKey, "/v1/models"));
        }

        using (var revoker = lab.NodeClient(AnsibleLab.Node3, operatorToken))
        {
            Assert.Equal(HttpStatusCode.NoContent, (await revoker.DeleteAsync($"/admin/api-keys/{id}")).StatusCode);
        }

        using (var onNode3 = lab.NodeClient(AnsibleLab.Node3, key))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, await TryStatus(onNode3, "/v1/models"));
        }

        foreach (var node in new[] { AnsibleLab.Node1, AnsibleLab.Node2 })
        {
            using var withKey = lab.NodeClient(node, key);
            var deadline = DateTime.UtcNow.AddSeconds(15);
            HttpStatusCode? status;
            while ((status = await TryStatus(withKey, "/v1/models")) == HttpStatusCode.OK && DateTime.UtcNow < deadline)
            {
                await Task.Delay(500);
            }

            Assert.Equal(HttpStatusCode.Unauthorized, status);
        }

        // The new node's firewall came up with it, and its appliance too connected nowhere else.
        Assert.Equal(0, await lab.FirewallCounterAsync(AnsibleLab.Node3, "refused_egress"));
    }

    [Fact, Step(10)]
    public async Task A_node_retires_under_load_and_the_balancer_and_the_database_let_it_go()
    {
        var nodesBefore = await MainPids();
        var (_, servicesBefore) = await lab.SshAsync(AnsibleLab.Balancer, BalancerServicePids);

        // While the other nodes are out of service, retire.yml refuses to take node3 out (nobody would serve) and
        // touches nothing. (Without --limit it refuses too: AnsibleContentTests.)
        foreach (var other in new[] { AnsibleLab.Node1, AnsibleLab.Node2 })
        {
            Assert.Equal(string.Empty, await HaproxyCommand($"set server appliance/{other} state maint"));
        }

        var refused = await lab.PlaybookAsync("retire.yml", "--limit", AnsibleLab.Node3);
        foreach (var other in new[] { AnsibleLab.Node1, AnsibleLab.Node2 })
        {
            Assert.Equal(string.Empty, await HaproxyCommand($"set server appliance/{other} state ready"));
        }

        await WaitUntilServingAsync(AnsibleLab.Node1, AnsibleLab.Node2);
        Assert.True(refused.ExitCode != 0 && refused.Output.Contains($"Retiring {AnsibleLab.Node3} would leave no node serving", StringComparison.Ordinal), refused.Output);
        Assert.Equal(nodesBefore, await MainPids());
        Assert.Equal("active", (await lab.SshAsync(AnsibleLab.Node3, "systemctl is-active appliance")).Output.Trim());
        var untouched = await HaproxyCommand("show servers state appliance");
        Assert.True(new[] { AnsibleLab.Node1, AnsibleLab.Node2, AnsibleLab.Node3 }.All(node => AdministrativeState(untouched, node) == 0), untouched);

        // node3 leaves the balancer, drains and stops for good while clients keep streaming through HAProxy.
        await RunUnderLoadAsync("retire.yml", "retire.yml --limit node3", "--limit", AnsibleLab.Node3);
        var (_, unit) = await lab.SshAsync(AnsibleLab.Node3, "systemctl is-active appliance; systemctl is-enabled appliance");
        Assert.Equal("inactive\ndisabled", unit.Trim());
        var retired = await HaproxyCommand("show servers state appliance");
        Assert.True(AdministrativeState(retired, AnsibleLab.Node3) == 1, retired); // taken out of the balancer, not just failing its checks
        Assert.Equal(0, (await lab.SshAsync(AnsibleLab.Node3, "test -e /opt/appliance/.retired && test ! -e /opt/appliance/.out-of-service")).ExitCode);

        // Still in the inventory by mistake, a models run refuses to touch it rather than start it again.
        var stillListed = await lab.PlaybookAsync("models.yml", "--limit", AnsibleLab.Node3);
        Assert.True(stillListed.ExitCode != 0 && stillListed.Output.Contains($"{AnsibleLab.Node3} was retired", StringComparison.Ordinal), stillListed.Output);
        Assert.Equal("inactive", (await lab.SshAsync(AnsibleLab.Node3, "systemctl is-active appliance")).Output.Trim());

        // Out of the inventory, a run for the balancers and the database drops it from HAProxy and pg_hba, by reload.
        lab.RemoveNode(AnsibleLab.Node3);
        var (_, run) = await RunUnderLoadAsync("site.yml", "site.yml --limit loadbalancers,databases", "--limit", "loadbalancers,databases");
        Assert.Equal(nodesBefore, await MainPids());
        var (_, servicesAfter) = await lab.SshAsync(AnsibleLab.Balancer, BalancerServicePids);
        Assert.Equal(servicesBefore.Trim(), servicesAfter.Trim());
        string[] balancerChanges = ["Let go of clients no longer listed", "Reload postgresql",
            "Write the configuration (checked by haproxy -c before it replaces the old one)", "Reload haproxy"];
        Assert.All(run.ChangedTaskNamesOn(AnsibleLab.Balancer), task => Assert.Contains(task, balancerChanges));
        var servers = await HaproxyCommand("show servers state");
        Assert.DoesNotContain($" {AnsibleLab.Node3} ", servers, StringComparison.Ordinal);

        // The database no longer lets node3 in, whatever it still knows.
        var (_, hba) = await lab.SshAsync(AnsibleLab.Balancer, "grep -hE '^host[[:space:]]+appliance[[:space:]]' /etc/postgresql/*/main/pg_hba.conf");
        Assert.DoesNotContain(lab.Address(AnsibleLab.Node3), hba, StringComparison.Ordinal);
        var (connected, refusal) = await lab.SshAsync(AnsibleLab.Node3,
            $"PGPASSWORD={AnsibleLab.PostgresPassword} psql -h {lab.BalancerAddress} -U appliance -d appliance -c 'select 1' 2>&1");
        Assert.True(connected != 0 && refusal.Contains("no pg_hba.conf entry", StringComparison.Ordinal), refusal);

        // Its audit chain stays: verification through HAProxy still finds it intact, and usage still counts its requests.
        using var auditor = lab.BalancedClient(await lab.Identity.ClientCredentialsTokenAsync("compliance-bot"));
        using var verify = await auditor.GetAsync("/audit/verify?full=true");
        var verdict = await verify.Content.ReadAsStringAsync();
        Assert.True(verify.StatusCode == HttpStatusCode.OK, verdict);
        using var verdictJson = JsonDocument.Parse(verdict);
        Assert.True(verdictJson.RootElement.GetProperty("ok").GetBoolean(), verdict);
        Assert.Contains(verdictJson.RootElement.GetProperty("chains").EnumerateArray(),
            chain => chain.GetProperty("node").GetString() == AnsibleLab.Node3 && chain.GetProperty("ok").GetBoolean() && chain.GetProperty("entries").GetInt32() > 0);
        Assert.Empty(await UsageDifferences(auditor));
    }

    [Fact, Step(11)]
    public async Task The_cluster_CA_rolls_over_under_load_and_the_old_one_is_trusted_nowhere()
    {
        var pki = Path.Combine(Path.GetDirectoryName(lab.Inventory)!, "pki");
        var oldAuthority = File.ReadAllText(Path.Combine(pki, "cluster-ca.crt"));
        using var oldBalancer = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(
            Path.Combine(pki, $"{AnsibleLab.Balancer}-client.crt"), Path.Combine(pki, $"{AnsibleLab.Balancer}-client.key"));

        var before = await MainPids();

        var (_, run) = await RunUnderLoadAsync("rotate-ca.yml", "rotate-ca.yml");

        // Every node read its new files while running: none restarted nor left the balancer.
        Assert.Equal(before, await MainPids());
        Assert.DoesNotContain("Restart with the new settings", run.ChangedTaskNames);
        Assert.DoesNotContain("Take the node out of the load balancers", run.ChangedTaskNames);
        Assert.All(lab.Nodes, node => Assert.Contains("Make the node read its new certificate files", run.ChangedTaskNamesOn(node)));

        Assert.NotEqual(oldAuthority, File.ReadAllText(Path.Combine(pki, "cluster-ca.crt")));
        Assert.False(File.Exists(Path.Combine(pki, "cluster-ca-next.crt")), "the rollover did not finish");
        Assert.Contains(oldAuthority, Directory.GetFiles(Path.Combine(pki, "retired"), "*cluster-ca.crt").Select(File.ReadAllText));
        foreach (var node in lab.Nodes)
        {
            // NodeClient trusts only the pki folder's (new) CA and presents the balancer's new certificate.
            using (var current = lab.NodeClient(node, null))
            {
                Assert.Equal(HttpStatusCode.OK, (await current.GetAsync("/health/live")).StatusCode);
            }

            using var old = lab.NodeClient(node, null, clientCertificate: oldBalancer);
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => old.GetAsync("/health/live"));
        }

        // The balancer verifies the nodes with the new CA alone.
        var (_, trusted) = await lab.SshAsync(AnsibleLab.Balancer, "grep -c 'BEGIN CERTIFICATE' /etc/haproxy/certs/cluster-ca.pem");
        Assert.Equal("1", trusted.Trim());
        output.WriteLine($"rotate-ca.yml changed: {string.Join(", ", run.ChangedTaskNames.Distinct())}");
    }

    [Fact, Step(12)]
    public async Task Losing_a_node_keeps_the_service_answering()
    {
        using var client = lab.BalancedClient(await lab.Identity.ClientCredentialsTokenAsync("report-generator"));
        await lab.CrashAsync(AnsibleLab.Node2);

        // HAProxy retries a refused or timed-out connection on the other node, and its checks take node2 out.
        var consecutive = 0;
        var failures = new List<string>();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (consecutive < 20 && DateTime.UtcNow < deadline)
        {
            using var chat = await Chat(client, LabModel);
            if (chat.StatusCode == HttpStatusCode.OK)
            {
                consecutive++;
            }
            else
            {
                consecutive = 0;
                failures.Add($"{(int)chat.StatusCode}");
            }
        }

        Assert.True(consecutive >= 20, $"the service did not keep answering with one node down; failures: {string.Join(", ", failures)}");
        output.WriteLine($"node2 crashed: {failures.Count} failed requests before 20 in a row succeeded");
    }

    /// <summary>
    /// A person signs in to the console through HAProxy with the realm (authorization code), then opens a page on each
    /// node in turn (HAProxy's node cookie set by hand) and on a node that restarted: the session holds throughout.
    /// </summary>
    private async Task ConsoleSessionSurvivesAlternatingNodesAndARestartAsync()
    {
        var jar = new CookieContainer();
        using var browser = lab.Browser(jar);
        Assert.Equal("/console/audit", await ConsoleSignIn.SignInAsync(browser, "bob", "/console/audit"));

        foreach (var node in new[] { AnsibleLab.Node1, AnsibleLab.Node2, AnsibleLab.Node1, AnsibleLab.Node2 })
        {
            using var page = await OpenAuditPageOn(node);
            Assert.False(SetsNodeCookie(page), $"HAProxy did not send the page to {node}");
        }

        var (restarted, log) = await lab.SshAsync(AnsibleLab.Node1, "systemctl restart appliance");
        Assert.True(restarted == 0, log);
        using (var direct = lab.NodeClient(AnsibleLab.Node1, null))
        {
            var ready = DateTime.UtcNow.AddMinutes(2);
            while ((await TryStatus(direct, "/health/ready")) != HttpStatusCode.OK && DateTime.UtcNow < ready)
            {
                await Task.Delay(1000);
            }
        }

        // Once HAProxy sees the node up again it sends the page there (and sets no other node's cookie).
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            using var page = await OpenAuditPageOn(AnsibleLab.Node1);
            if (!SetsNodeCookie(page) || DateTime.UtcNow > deadline)
            {
                Assert.False(SetsNodeCookie(page), "the restarted node did not come back into HAProxy");
                break;
            }

            await Task.Delay(1000);
        }

        async Task<HttpResponseMessage> OpenAuditPageOn(string node)
        {
            // HAProxy's own cookie may carry another path: expired first, so that only the chosen node's is sent.
            foreach (var cookie in jar.GetAllCookies().Where(c => c.Name == "appliance_node"))
            {
                cookie.Expired = true;
            }

            jar.SetCookies(browser.BaseAddress!, $"appliance_node={NodeCookie(node)}; path=/");
            var page = await browser.GetAsync("/console/audit");
            var content = await page.Content.ReadAsStringAsync();
            Assert.True(page.StatusCode == HttpStatusCode.OK && content.Contains("Audit trail", StringComparison.Ordinal),
                $"the console on {node} answered {(int)page.StatusCode} {page.Headers.Location}");
            return page;
        }

        static bool SetsNodeCookie(HttpResponseMessage page) =>
            page.Headers.TryGetValues("Set-Cookie", out var cookies) && cookies.Any(c => c.StartsWith("appliance_node=", StringComparison.Ordinal));

        // The value HAProxy's console backend gives a node (haproxy.cfg.j2: the node name's SHA-1, 12 hex digits).
        static string NodeCookie(string node) =>
            Convert.ToHexStringLower(System.Security.Cryptography.SHA1.HashData(Encoding.UTF8.GetBytes(node)))[..12];
    }

    private static async Task<HttpStatusCode?> TryStatus(HttpClient client, string path)
    {
        try
        {
            using var response = await client.GetAsync(path);
            return response.StatusCode;
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    /// <summary>Runs a playbook while four clients stream through HAProxy; it must succeed and no request may fail. Returns the answers completed while it ran.</summary>
    private async Task<(int Completed, AnsibleLab.PlaybookRun Run)> RunUnderLoadAsync(string playbook, string label, params string[] options)
    {
        using var token = new RenewingToken(() => lab.Identity.ClientCredentialsTokenAsync("report-generator"), renewAfter: TimeSpan.FromMinutes(2));
        await using var load = new SteadyLoad(() => lab.BalancedClient(null), token.CurrentAsync, LabModel, workers: 4);
        // The load flows before the playbook starts (each client has its token and connection), so that a short
        // playbook (retiring a node takes seconds) still runs beside answers rather than beside clients starting.
        await load.WarmAsync(answers: 8, TimeSpan.FromSeconds(60));
        var before = load.Completed;
        var started = DateTime.UtcNow;
        var run = await lab.PlaybookAsync(playbook, options);
        var during = load.Completed - before;
        await load.StopAsync();
        output.WriteLine(run.SlowestTasks);
        output.WriteLine($"{label}: {(DateTime.UtcNow - started).TotalSeconds:F0} s, {during} streamed answers while it ran ({load.Completed} in all), {load.Failures.Count} failed");
        Assert.True(run.ExitCode == 0, $"{run.Output}\n== the first streamed answers that failed\n{string.Join('\n', load.Failures.Take(5))}");
        Assert.True(load.Failures.Count == 0, $"{load.Failures.Count} of {load.Completed + load.Failures.Count} failed:\n{string.Join('\n', load.Failures.Take(10))}");
        Assert.True(before >= 8 && during >= 8, $"{before} answers before and {during} beside {label}: too little load to prove anything");
        return (during, run);
    }

    private static Task<HttpResponseMessage> Chat(HttpClient client, string model) =>
        client.PostAsync("/v1/chat/completions", new StringContent(
            $$"""{"model":"{{model}}","messages":[{"role":"user","content":"hello"}],"max_tokens":4,"ignore_eos":true}""", Encoding.UTF8, "application/json"));

    private Task<Dictionary<string, long>> CompletedChatsByNode() =>
        CountsByNode("kind = 'request.completed' AND endpoint = '/v1/chat/completions' AND status = 200");

    /// <summary>The requests a usage report counts (completed, with a model), per node, read from the database.</summary>
    private Task<Dictionary<string, long>> UsageRecordsByNode() => CountsByNode("kind = 'request.completed' AND model IS NOT NULL");

    private async Task<Dictionary<string, long>> CountsByNode(string condition)
    {
        await using var connection = new NpgsqlConnection(lab.PostgresConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT node, count(*) FROM audit_entries WHERE {condition} GROUP BY node", connection);
        var counts = new Dictionary<string, long>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            counts[reader.GetString(0)] = reader.GetInt64(1);
        }

        return counts;
    }

    private async Task<List<string>> SourceAddresses()
    {
        await using var connection = new NpgsqlConnection(lab.PostgresConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT DISTINCT source_ip FROM audit_entries WHERE endpoint = '/v1/chat/completions'", connection);
        var addresses = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            addresses.Add(reader.GetString(0));
        }

        return addresses;
    }

    private async Task<List<string>> RunningVersions(string link = "current")
    {
        var versions = new List<string>();
        foreach (var node in new[] { AnsibleLab.Node1, AnsibleLab.Node2 })
        {
            var (exit, output) = await lab.SshAsync(node, $"cat /opt/appliance/{link}/VERSION");
            Assert.True(exit == 0, output);
            versions.Add(output.Trim());
        }

        return versions;
    }

    /// <summary>The main processes of HAProxy (its master, which a reload keeps) and PostgreSQL (its postmaster).</summary>
    private const string BalancerServicePids = "systemctl show haproxy 'postgresql@*' -p Id -p MainPID";

    /// <summary>A command to HAProxy's runtime API on the balancer (its answer; a change answers nothing).</summary>
    private async Task<string> HaproxyCommand(string command)
    {
        var (exit, answer) = await lab.SshAsync(AnsibleLab.Balancer,
            $"python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('/run/haproxy/admin.sock'); s.sendall(b'{command}\\n'); print(s.makefile().read(), end='')\"");
        Assert.True(exit == 0, answer);
        return answer.Trim();
    }

    /// <summary>Waits until HAProxy has the nodes up (checks passing) and in service again, as after leaving maintenance.</summary>
    private async Task WaitUntilServingAsync(params string[] nodes)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var state = await HaproxyCommand("show servers state appliance");
            if (nodes.All(node => OperationalState(state, node) == 2 && AdministrativeState(state, node) == 0))
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"{string.Join(", ", nodes)} not back in service within 60 s: {state}");
            await Task.Delay(500);
        }
    }

    /// <summary>A server's srv_op_state in "show servers state" (2: running, its checks passing).</summary>
    private static int OperationalState(string state, string server) =>
        state.Split('\n').Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(fields => fields.Length > 6 && fields[3] == server).Select(fields => int.Parse(fields[5], System.Globalization.CultureInfo.InvariantCulture))
            .DefaultIfEmpty(-1).First();

    /// <summary>A server's srv_admin_state in "show servers state" (1: maintenance forced through the runtime API).</summary>
    private static int AdministrativeState(string state, string server) =>
        state.Split('\n').Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(fields => fields.Length > 6 && fields[3] == server).Select(fields => int.Parse(fields[6], System.Globalization.CultureInfo.InvariantCulture))
            .DefaultIfEmpty(-1).First();

    /// <summary>Where a usage report through HAProxy (all nodes, then each node) differs from the database's records.</summary>
    private async Task<List<string>> UsageDifferences(HttpClient auditor)
    {
        var recorded = await UsageRecordsByNode();
        var differences = new List<string>();
        var total = await UsageRequests(auditor, string.Empty);
        if (total != recorded.Values.Sum())
        {
            differences.Add($"all nodes: report {total}, records {recorded.Values.Sum()}");
        }

        foreach (var node in lab.Nodes)
        {
            var reported = await UsageRequests(auditor, $"&node={node}");
            if (reported != recorded.GetValueOrDefault(node))
            {
                differences.Add($"{node}: report {reported}, records {recorded.GetValueOrDefault(node)}");
            }
        }

        return differences;
    }

    private static async Task<long> UsageRequests(HttpClient auditor, string filter)
    {
        using var usage = JsonDocument.Parse(await auditor.GetStringAsync($"/audit/usage?by=model{filter}"));
        return usage.RootElement.GetProperty("data").EnumerateArray().Sum(row => row.GetProperty("requests").GetInt64());
    }

    private async Task<List<string>> MainPids()
    {
        var pids = new List<string>();
        foreach (var node in new[] { AnsibleLab.Node1, AnsibleLab.Node2 })
        {
            pids.Add((await lab.SshAsync(node, "systemctl show appliance -p MainPID --value")).Output.Trim());
        }

        return pids;
    }
}
