using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Deployment;

/// <summary>
/// Four Debian machines booted with real systemd (tests/deployment/lab.sh: systemd-nspawn on a bridge of their own)
/// - two appliance nodes, a load balancer that also holds the audit database, and a spare machine that joins as a
/// third node later - the OpenID provider on the bridge, and an inventory for ansible/ pointing at the first three.
/// The machines start bare; the tests deploy to them with the playbooks.
/// </summary>
public sealed partial class AnsibleLab : IAsyncLifetime
{
    public const string Node1 = "node1";
    public const string Node2 = "node2";

    /// <summary>Booted with the others but outside the inventory until <see cref="AddNode"/>.</summary>
    public const string Node3 = "node3";
    public const string Balancer = "lb";
    public const string PostgresPassword = "lab-audit-db-password";

    private static readonly string LabScript = Path.Combine(RepositoryPaths.Root, "tests", "deployment", "lab.sh");
    private static readonly string ImageFolder = Path.Combine(Path.GetTempPath(), "appliance-lab-image");

    private readonly TempFolder _work = new("ansible-lab");
    private readonly string _prefix = $"10.{Random.Shared.Next(100, 200)}.{Random.Shared.Next(1, 250)}";
    private OidcProvider? _identity;
    private SyslogSink? _syslog;
    private X509Certificate2? _certificate;
    private readonly List<string> _nodes = [Node1, Node2];
    private int _playbookRuns;

    public string Gateway => $"{_prefix}.1";

    public string BalancerAddress => $"{_prefix}.10";

    /// <summary>A second address of the test host on the bridge, one the nodes' firewall does not know.</summary>
    public string Outsider => $"{_prefix}.250";

    public OidcProvider Identity => _identity ?? throw new InvalidOperationException("the lab has not started");

    /// <summary>The SIEM the nodes forward their audit entries to.</summary>
    public SyslogSink Syslog => _syslog ?? throw new InvalidOperationException("the lab has not started");

    public string Inventory => _work.Combine("inventory/hosts.json");

    /// <summary>The hosts of the inventory's appliance_nodes group, in the order they joined.</summary>
    public IReadOnlyList<string> Nodes => _nodes;

    /// <summary>The cluster's checkpoint key, as auditors get it (public half).</summary>
    public string CheckpointPublicKeyPem { get; private set; } = string.Empty;

    /// <summary>The variables the playbooks run with (group_vars/all.json); change and <see cref="WriteVariables"/> to re-run with others.</summary>
    public JsonObject Variables { get; } = [];

    public string Address(string machine) => machine switch
    {
        Node1 => $"{_prefix}.11",
        Node2 => $"{_prefix}.12",
        Node3 => $"{_prefix}.13",
        Balancer => BalancerAddress,
        _ => throw new ArgumentOutOfRangeException(nameof(machine)),
    };

    public string PostgresConnectionString =>
        $"Host={BalancerAddress};Port=5432;Database=appliance;Username=appliance;Password={PostgresPassword};Timeout=10";

    public async Task InitializeAsync()
    {
        var bundles = BundleBuilds.CurrentAsync();
        await Lab("rootfs", ImageFolder);
        await Lab("up", _work.Path, ImageFolder, $"{Gateway}/24", $"{Node1}={Address(Node1)}", $"{Node2}={Address(Node2)}", $"{Node3}={Address(Node3)}",
            $"{Balancer}={BalancerAddress}");
        var (added, addLog) = await ProcessRunner.RunAsync("ip", ["address", "add", $"{Outsider}/24", "dev", (await File.ReadAllTextAsync(_work.Combine("bridge"))).Trim()]);
        if (added != 0)
        {
            throw new InvalidOperationException($"could not add the outsider's address: {addLog}");
        }

        // The console signs people in through the load balancer's address, as users reach it.
        _identity = await OidcProvider.StartOnAsync(Gateway, $"https://{BalancerAddress}");
        _syslog = new SyslogSink(Gateway);
        WriteInventory(await bundles);
    }

    public async Task DisposeAsync()
    {
        await ProcessRunner.RunAsync("bash", [LabScript, "down", _work.Path], TimeSpan.FromMinutes(2));
        if (_identity is not null)
        {
            await _identity.DisposeAsync();
        }

        if (_syslog is not null)
        {
            await _syslog.DisposeAsync();
        }

        _certificate?.Dispose();
        _work.Dispose();
    }

    /// <summary>Runs a playbook of ansible/ against the lab, as an operator would from that folder.</summary>
    public async Task<PlaybookRun> PlaybookAsync(string playbook, params string[] options)
    {
        var ansible = Path.Combine(RepositoryPaths.Root, "ansible");
        var (exit, output) = await ProcessRunner.RunAsync("ansible-playbook", ["-i", Inventory, playbook, .. options], TimeSpan.FromMinutes(15), ansible,
            new Dictionary<string, string>
            {
                ["ANSIBLE_CONFIG"] = Path.Combine(ansible, "ansible.cfg"),
                ["ANSIBLE_NOCOLOR"] = "1",
                ["ANSIBLE_FORCE_COLOR"] = "0",
                // Task times at the end of the output, so that a slow lab run says where its time went.
                ["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.profile_tasks",
                ["PROFILE_TASKS_TASK_OUTPUT_LIMIT"] = "15",
            });
        var logs = Environment.GetEnvironmentVariable("APPLIANCE_LAB_LOGS");
        if (!string.IsNullOrEmpty(logs))
        {
            // The test output keeps only the end of a run; a whole log per run, numbered, for profiling the lab.
            Directory.CreateDirectory(logs);
            var number = Interlocked.Increment(ref _playbookRuns);
            await File.WriteAllTextAsync(Path.Combine(logs, $"{number:D2}-{Path.GetFileNameWithoutExtension(playbook)}.log"), output);
        }

        if (exit != 0)
        {
            // CI keeps only the end of a failure message: what failed and what the nodes logged go last.
            output += await DiagnosisAsync(output);
        }

        return new PlaybookRun(exit, output);
    }

    /// <summary>The failed tasks' results and each node's last service log lines, for a failed run's message.</summary>
    private async Task<string> DiagnosisAsync(string output)
    {
        var report = new StringBuilder("\n== why the run failed\n");
        foreach (var line in output.Split('\n').Where(l => l.StartsWith("fatal: [", StringComparison.Ordinal) || l.StartsWith("failed: [", StringComparison.Ordinal)).TakeLast(4))
        {
            report.AppendLine(line.Length > 2000 ? line[..2000] + " ..." : line);
        }

        foreach (var node in _nodes)
        {
            try
            {
                // Warnings and errors first (the service's last lines may be all requests), then the very last lines.
                var (_, journal) = await SshAsync(node,
                    "journalctl -u appliance --no-pager -o short-precise -n 2000 | grep -E 'warn|fail|error|crit|refus' | tail -n 12 | cut -c1-400; echo ...; journalctl -u appliance --no-pager -o short-precise -n 12 | cut -c1-400");
                report.AppendLine(CultureInfo.InvariantCulture, $"== {node}: journalctl -u appliance").AppendLine(journal.TrimEnd());
            }
            catch (TimeoutException)
            {
                report.AppendLine(CultureInfo.InvariantCulture, $"== {node}: no answer over SSH");
            }
        }

        return report.ToString();
    }

    /// <summary>Runs a shell command on a lab machine over SSH.</summary>
    public Task<(int ExitCode, string Output)> SshAsync(string machine, string command) =>
        ProcessRunner.RunAsync("ssh", [.. SshOptions(), $"root@{Address(machine)}", command], TimeSpan.FromMinutes(2));

    /// <summary>Powers a machine off hard, every process in it killed at once.</summary>
    public Task CrashAsync(string machine) => Lab("crash", _work.Path, machine);

    /// <summary>A client for the load balancer's HTTPS address that trusts the lab's certificate and nothing else.</summary>
    public HttpClient BalancedClient(string? token)
    {
        var expected = _certificate!.GetCertHash();
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null && certificate.GetCertHash().AsSpan().SequenceEqual(expected),
            },
            PooledConnectionLifetime = TimeSpan.FromSeconds(5),
        };
        var client = new HttpClient(handler) { BaseAddress = new Uri($"https://{BalancerAddress}"), Timeout = TimeSpan.FromSeconds(60) };
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }

        return client;
    }

    /// <summary>
    /// A client for one node directly, as the load balancer reaches it: HTTPS, trusting only the cluster CA the roles
    /// made on the control node (the inventory's pki folder).
    /// </summary>
    /// <remarks>
    /// With <paramref name="asBalancer"/>, it presents the load balancer's client certificate, as HAProxy does, or
    /// <paramref name="clientCertificate"/> when given.
    /// </remarks>
    public HttpClient NodeClient(string node, string? token, bool asBalancer = true, X509Certificate2? clientCertificate = null)
    {
        var pki = Path.Combine(Path.GetDirectoryName(Inventory)!, "pki");
        var authority = X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(pki, "cluster-ca.crt")));
        var balancerCertificate = Path.Combine(pki, $"{Balancer}-client.crt");
        var handler = new SocketsHttpHandler
        {
            SslOptions =
            {
                ClientCertificates = clientCertificate is not null ? [clientCertificate]
                    : asBalancer && File.Exists(balancerCertificate) ? [X509Certificate2.CreateFromPemFile(balancerCertificate, Path.Combine(pki, $"{Balancer}-client.key"))]
                    : null,
                RemoteCertificateValidationCallback = (_, certificate, _, _) => CertificateTrust.ChainsTo(authority, certificate),
            },
        };
        var client = new HttpClient(handler) { BaseAddress = new Uri($"https://{Address(node)}:8080"), Timeout = TimeSpan.FromSeconds(60) };
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }

        return client;
    }

    /// <summary>
    /// A browser for the console through the load balancer: it keeps cookies (HAProxy's node cookie among them) and
    /// follows no redirect by itself; it trusts the lab's certificate and reaches the realm over plain HTTP.
    /// </summary>
    public HttpClient Browser(CookieContainer jar)
    {
        var expected = _certificate!.GetCertHash();
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseCookies = true,
            CookieContainer = jar,
            SslOptions = { RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null && certificate.GetCertHash().AsSpan().SequenceEqual(expected) },
        };
        return new HttpClient(handler) { BaseAddress = new Uri($"https://{BalancerAddress}"), Timeout = TimeSpan.FromSeconds(60) };
    }

    /// <summary>A client for one node's appliance port from <see cref="Outsider"/>, a host the firewall does not admit.</summary>
    public HttpClient OutsiderClient(string node)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, cancellation) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    socket.Bind(new IPEndPoint(IPAddress.Parse(Outsider), 0));
                    await socket.ConnectAsync(context.DnsEndPoint, cancellation);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
            SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true },
        };
        return new HttpClient(handler) { BaseAddress = new Uri($"https://{Address(node)}:8080"), Timeout = TimeSpan.FromSeconds(10) };
    }

    /// <summary>The packets a counter of the appliance's nftables table has counted on a machine.</summary>
    public async Task<long> FirewallCounterAsync(string machine, string counter)
    {
        var (exit, output) = await SshAsync(machine, $"nft list counter inet appliance {counter}");
        var packets = Regex.Match(output, @"packets (\d+)");
        return exit == 0 && packets.Success
            ? long.Parse(packets.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)
            : throw new InvalidOperationException($"no counter {counter} on {machine}: {output}");
    }

    /// <summary>Adds a booted machine to the inventory's appliance_nodes; the next playbook run deploys to it.</summary>
    public void AddNode(string node)
    {
        _ = Address(node);
        _nodes.Add(node);
        WriteHosts();
    }

    /// <summary>Takes a node out of the inventory (as an operator does once retire.yml has run on it).</summary>
    public void RemoveNode(string node)
    {
        _nodes.Remove(node);
        WriteHosts();
    }

    public void WriteVariables() =>
        File.WriteAllText(_work.Combine("inventory/group_vars/all.json"), Variables.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

    private void WriteHosts()
    {
        JsonObject Host(string machine) => new() { ["ansible_host"] = Address(machine) };
        var nodes = new JsonObject();
        foreach (var node in _nodes)
        {
            nodes[node] = Host(node);
        }

        var inventory = new JsonObject
        {
            ["all"] = new JsonObject
            {
                ["children"] = new JsonObject
                {
                    ["appliance_nodes"] = new JsonObject { ["hosts"] = nodes },
                    ["loadbalancers"] = new JsonObject { ["hosts"] = new JsonObject { [Balancer] = Host(Balancer) } },
                    ["databases"] = new JsonObject { ["hosts"] = new JsonObject { [Balancer] = new JsonObject() } },
                },
                ["vars"] = new JsonObject
                {
                    ["ansible_user"] = "root",
                    ["ansible_ssh_private_key_file"] = _work.Combine("id_ed25519"),
                    ["ansible_ssh_common_args"] = string.Join(' ', CommonSshOptions),
                },
            },
        };
        File.WriteAllText(Inventory, inventory.ToJsonString());
    }

    private void WriteInventory(string bundleFolder)
    {
        Directory.CreateDirectory(_work.Combine("inventory/group_vars"));
        WriteHosts();

        using var checkpointKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        CheckpointPublicKeyPem = checkpointKey.ExportSubjectPublicKeyInfoPem();
        using var tlsKey = RSA.Create(2048);
        var request = new CertificateRequest("CN=appliance.lab", tlsKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(System.Net.IPAddress.Parse(BalancerAddress));
        request.CertificateExtensions.Add(names.Build());
        _certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(2));

        Variables["appliance_version"] = BundleBuilds.Version;
        Variables["appliance_bundle_dir"] = bundleFolder;
        Variables["appliance_identity_authority"] = Identity.Authority();
        Variables["appliance_identity_require_https"] = false; // the test realm speaks plain http on the lab bridge
        Variables["appliance_operator_client_secret"] = OidcProvider.Clients.Single(c => c.ClientId == "appliance-operator").Secret;
        Variables["appliance_postgres_password"] = PostgresPassword;
        Variables["appliance_audit_checkpoint_key"] = checkpointKey.ExportPkcs8PrivateKeyPem();
        using var keyRingKey = RSA.Create(2048);
        using var keyRing = new CertificateRequest("CN=appliance key ring", keyRingKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddYears(1));
        Variables["appliance_key_ring_certificate"] = keyRing.ExportCertificatePem() + "\n" + keyRingKey.ExportPkcs8PrivateKeyPem() + "\n";
        Variables["haproxy_tls_certificate"] = _certificate.ExportCertificatePem();
        Variables["haproxy_tls_key"] = tlsKey.ExportPkcs8PrivateKeyPem();
        Variables["haproxy_http_port"] = 0;
        // TLS to the nodes, with the nodes requiring HAProxy's certificate too (set for all hosts, as the example does).
        Variables["appliance_cluster_tls"] = true;
        Variables["appliance_cluster_mutual_tls"] = true;
        // The test host reads the audit database directly, as an auditor's workstation would, and reaches the nodes as
        // an administrator's workstation; the nodes' own outbound connections are limited to what their settings name.
        Variables["postgresql_extra_clients"] = new JsonArray(Gateway);
        Variables["appliance_demo_model"] = true; // served until models.yml declares the lab's model
        Variables["appliance_firewall"] = true;
        Variables["appliance_firewall_extra_sources"] = new JsonArray(Gateway);
        Variables["appliance_settings"] = new JsonObject
        {
            // API keys on: they live in the cluster's database, so one issued through a node works on every node.
            ["Identity"] = new JsonObject { ["JwksRefreshInterval"] = "00:00:05", ["ApiKeys"] = new JsonObject { ["Enabled"] = true, ["ServiceOwners"] = new JsonArray("svc-nightly") } },
            ["Audit"] = new JsonObject { ["Syslog"] = new JsonObject { ["Target"] = $"tcp://{Gateway}:{Syslog.Port}" } },
        };
        WriteVariables();
    }

    // Each lab boots machines with new addresses and the image's host keys: nothing to remember.
    private static readonly string[] CommonSshOptions =
        ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR"];

    private string[] SshOptions() => ["-i", _work.Combine("id_ed25519"), .. CommonSshOptions];

    private static async Task Lab(params string[] arguments)
    {
        var (exit, output) = await ProcessRunner.RunAsync("bash", [LabScript, .. arguments], TimeSpan.FromMinutes(10));
        if (exit != 0)
        {
            throw new InvalidOperationException($"lab.sh {arguments[0]} failed ({exit}): {output}");
        }
    }

    /// <summary>One ansible-playbook run: its exit code, its output and the PLAY RECAP's counts per host.</summary>
    public sealed partial record PlaybookRun(int ExitCode, string Output)
    {
        public IReadOnlyDictionary<string, (int Ok, int Changed, int Failed)> Recap =>
            RecapLine().Matches(Output).ToDictionary(m => m.Groups["host"].Value,
                m => (int.Parse(m.Groups["ok"].Value, System.Globalization.CultureInfo.InvariantCulture),
                      int.Parse(m.Groups["changed"].Value, System.Globalization.CultureInfo.InvariantCulture),
                      int.Parse(m.Groups["failed"].Value, System.Globalization.CultureInfo.InvariantCulture)));

        /// <summary>The slowest tasks, as the profile_tasks callback lists them after the recap.</summary>
        public string SlowestTasks
        {
            get
            {
                var recap = Output.LastIndexOf("PLAY RECAP", StringComparison.Ordinal);
                return recap < 0 ? string.Empty : Output[recap..];
            }
        }

        /// <summary>The tasks that reported a change (for failure messages).</summary>
        public string ChangedTasks => string.Join('\n', ChangedTaskNames);

        /// <summary>The names of the tasks that reported a change on some host, without their role ("Write the node's settings").</summary>
        public IReadOnlyList<string> ChangedTaskNames => Changes().Select(c => c.Task).Distinct().ToList();

        /// <summary>
        /// The names of the tasks that changed something on one machine: its own tasks, and other hosts' tasks delegated
        /// to it ("changed: [node3 -> lb(10.1.2.10)]" is a change on lb).
        /// </summary>
        public IReadOnlyList<string> ChangedTaskNamesOn(string machine) =>
            Changes().Where(c => c.Machine == machine).Select(c => c.Task).Distinct().ToList();

        /// <summary>The hosts on which a task, or some item of it, was skipped ("skipping: [node2] => (item=...)"), in order.</summary>
        public IReadOnlyList<string> SkippedOn(string taskName)
        {
            var task = string.Empty;
            var hosts = new List<string>();
            foreach (var line in Output.Split('\n'))
            {
                if (TaskHeader().Match(line) is { Success: true } header)
                {
                    task = header.Groups["name"].Value;
                }
                else if (task == taskName && line.StartsWith("skipping: [", StringComparison.Ordinal))
                {
                    var host = line["skipping: [".Length..line.IndexOf(']', StringComparison.Ordinal)];
                    if (!hosts.Contains(host))
                    {
                        hosts.Add(host);
                    }
                }
            }

            return hosts;
        }

        private IEnumerable<(string Task, string Machine)> Changes()
        {
            var task = string.Empty;
            foreach (var line in Output.Split('\n'))
            {
                if (TaskHeader().Match(line) is { Success: true } header)
                {
                    task = header.Groups["name"].Value;
                }
                else if (ChangedLine().Match(line) is { Success: true } result)
                {
                    yield return (task, result.Groups["delegate"].Success ? result.Groups["delegate"].Value : result.Groups["host"].Value);
                }
            }
        }

        [GeneratedRegex(@"^changed: \[(?<host>[^\]\s]+)(?: -> (?<delegate>[^\]\s(]+))?")]
        private static partial Regex ChangedLine();

        [GeneratedRegex(@"^(?:TASK|RUNNING HANDLER) \[(?:[^\]:]+ : )?(?<name>[^\]]+)\]")]
        private static partial Regex TaskHeader();

        [GeneratedRegex(@"^(?<host>\S+)\s+:\s+ok=(?<ok>\d+)\s+changed=(?<changed>\d+)\s+unreachable=\d+\s+failed=(?<failed>\d+)", RegexOptions.Multiline)]
        private static partial Regex RecapLine();
    }
}
