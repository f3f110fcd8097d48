using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Appliance.Identity.ApiKeys;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;
using Microsoft.Extensions.DependencyInjection;

namespace Appliance.IntegrationTests.Identity;

/// <summary>Two nodes on one PostgreSQL: API keys are cluster state, not one node's file.</summary>
public sealed class ClusterApiKeyTests : IDisposable
{
    private readonly TestCluster _cluster = new("cluster-api-keys");

    [Fact]
    public async Task A_key_issued_through_one_node_works_on_the_other_and_once_revoked_fails_on_both()
    {
        string[] keys = ["--Identity:ApiKeys:Enabled=true", "--Identity:ApiKeys:ServiceOwners:0=svc-report", "--Identity:ApiKeys:RefreshInterval=00:00:00.5"];
        await using var node1 = await _cluster.StartNodeAsync("node-1", keys);
        await using var node2 = await _cluster.StartNodeAsync("node-2", keys);

        using var issue = await node1.Http.PostAsJsonAsync("/admin/api-keys", new { owner = "svc-report", name = "nightly", roles = new[] { "appliance-user" } });
        Assert.Equal(HttpStatusCode.Created, issue.StatusCode);
        using var issued = JsonDocument.Parse(await issue.Content.ReadAsStringAsync());
        var key = issued.RootElement.GetProperty("key").GetString()!;
        var id = issued.RootElement.GetProperty("apiKey").GetProperty("id").GetString()!;

        using var onNode1 = node1.ClientWith(key);
        using var onNode2 = node2.ClientWith(key);
        Assert.Equal(HttpStatusCode.OK, (await onNode2.GetAsync("/v1/models")).StatusCode); // at once, on the node that did not issue it
        Assert.Equal(HttpStatusCode.OK, (await onNode1.GetAsync("/v1/models")).StatusCode);
        using (var listed = JsonDocument.Parse(await node2.Http.GetStringAsync("/admin/api-keys")))
        {
            Assert.Contains(listed.RootElement.GetProperty("data").EnumerateArray(), k => k.GetProperty("id").GetString() == id);
        }

        // Revoked through node 2: refused there at once, and on node 1 once its snapshot is older than the refresh interval.
        Assert.Equal(HttpStatusCode.NoContent, (await node2.Http.DeleteAsync($"/admin/api-keys/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await onNode2.GetAsync("/v1/models")).StatusCode);
        var clock = Stopwatch.StartNew();
        HttpStatusCode status;
        do
        {
            status = (await onNode1.GetAsync("/v1/models")).StatusCode;
        }
        while (status == HttpStatusCode.OK && clock.Elapsed < TimeSpan.FromSeconds(10));

        // Within the poll's 10 s: a wall-clock bound here failed on a loaded CI machine. That the store rereads after its
        // RefreshInterval is shown with a fake clock in ApiKeyStoreTests; that the node's store has the one set, here.
        Assert.True(status == HttpStatusCode.Unauthorized, $"node 1 still accepted the revoked key after {clock.Elapsed}");
        Assert.Equal(TimeSpan.FromMilliseconds(500), node1.App.Services.GetRequiredService<ApiKeyStore>().RefreshInterval);
    }

    public void Dispose() => _cluster.Dispose();
}
