using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;
using Npgsql;

namespace Appliance.IntegrationTests.Host;

/// <summary>
/// Two nodes on one PostgreSQL share the console's key ring: a sign-in form from one node is accepted by the other,
/// the session cookie it sets opens pages on both and survives a node's restart, and the database holds the ring's
/// keys only encrypted with the cluster certificate.
/// </summary>
public sealed partial class ClusterConsoleSessionTests : IDisposable
{
    private readonly TestCluster _cluster = new("cluster-console");

    [Fact]
    public async Task A_console_session_made_on_one_node_is_good_on_the_other_and_after_a_restart()
    {
        var keyRing = $"--DataProtection:CertificatePath={WriteKeyRingCertificate(_cluster.Root.Combine("key-ring.pem"))}";
        // Started together, as after a cluster-wide restart: the first key is made once, under the database lock.
        var starting = new[] { _cluster.StartNodeAsync("node-1", keyRing), _cluster.StartNodeAsync("node-2", keyRing) };
        await Task.WhenAll(starting);
        var node1 = await starting[0];
        await using var node2 = await starting[1];

        // The cookie jar is per host, not per port: both nodes see the same cookies, as behind one load balancer.
        var jar = new CookieContainer();
        using var browser1 = Browser(node1, jar);
        using var browser2 = Browser(node2, jar);

        // The form (and its antiforgery cookie) from node 1, posted to node 2.
        var form = await browser1.GetStringAsync("/console/login?ReturnUrl=/console/audit");
        var token = WebUtility.HtmlDecode(AntiforgeryField().Match(form).Groups[1].Value);
        using var signIn = await browser2.PostAsync("/console/login", new FormUrlEncodedContent(
        [
            new("__RequestVerificationToken", token), new("User", "bob"), new("Roles", "appliance-auditor"), new("ReturnUrl", "/console/audit"),
        ]));
        Assert.Equal(HttpStatusCode.Redirect, signIn.StatusCode);

        // The session opens the audit page on both nodes.
        foreach (var browser in new[] { browser1, browser2 })
        {
            using var page = await browser.GetAsync("/console/audit");
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Contains("Audit trail", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // Node 1 restarts: the session is still good there (the ring is in the database, not the process).
        await node1.DisposeAsync();
        await using var restarted = await _cluster.StartNodeAsync("node-1", keyRing);
        using (var browser = Browser(restarted, jar))
        {
            using var page = await browser.GetAsync("/console/audit");
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        }

        // One key for the cluster (nodes that started together did not each make one), stored encrypted.
        await using var connection = new NpgsqlConnection(_cluster.Database.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT xml FROM data_protection_keys", connection);
        var keys = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                keys.Add(reader.GetString(0));
            }
        }

        var key = Assert.Single(keys);
        Assert.Contains("EncryptedData", key, StringComparison.Ordinal);
        Assert.DoesNotContain("<masterKey", key, StringComparison.Ordinal);
    }

    public void Dispose() => _cluster.Dispose();

    private static HttpClient Browser(RunningAppliance node, CookieContainer jar) =>
        new(new HttpClientHandler { CookieContainer = jar, AllowAutoRedirect = false }) { BaseAddress = node.Http.BaseAddress };

    /// <summary>What the Ansible role provisions: a self-signed certificate with its RSA key, in one PEM file.</summary>
    private static string WriteKeyRingCertificate(string path)
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=appliance key ring", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(5));
        File.WriteAllText(path, certificate.ExportCertificatePem() + "\n" + rsa.ExportPkcs8PrivateKeyPem() + "\n");
        return path;
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryField();
}
