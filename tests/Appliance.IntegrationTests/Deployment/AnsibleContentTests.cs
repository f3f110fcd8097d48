using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Deployment;

/// <summary>
/// The cheap checks of ansible/: syntax, ansible-lint's production profile, the layout Ansible users expect, every
/// role variable documented in the example inventory, and the shipped unit file equal to what the role renders.
/// They need Ansible and ansible-lint (.ci/run installs them): category Slow with the other deployment tests.
/// </summary>
[Trait("Category", "Slow")]
[Collection(DeploymentCollection.Name)]
public sealed partial class AnsibleContentTests : IDisposable
{
    private static readonly string Ansible = Path.Combine(RepositoryPaths.Root, "ansible");
    private static readonly string[] Playbooks = ["site.yml", "upgrade.yml", "rollback.yml", "models.yml", "retire.yml", "rotate-ca.yml"];
    private static readonly string[] Roles = ["appliance", "models", "postgresql", "haproxy", "keycloak_realm", "cluster_pki"];

    /// <summary>Roles that only run tasks on the control node: no service to notify, no file to render.</summary>
    private static readonly string[] ControlNodeRoles = ["cluster_pki"];
    private readonly TempFolder _root = new("ansible-content");

    [Fact]
    public async Task The_playbooks_pass_the_syntax_check_against_the_example_inventory()
    {
        var (exit, output) = await RunAsync("ansible-playbook", ["--syntax-check", "-i", "inventories/example/hosts.yml", .. Playbooks]);
        Assert.True(exit == 0, output);
    }

    [Fact]
    public async Task Ansible_lint_passes_with_the_production_profile()
    {
        var (exit, output) = await RunAsync("ansible-lint", ["--profile", "production", "--nocolor", .. Playbooks, "roles", "inventories"]);
        Assert.True(exit == 0, output);
        Assert.Contains("Passed with production profile", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null, "will not retire every node")]
    [InlineData("lb-1", "retires appliance nodes only; lb-1 is not in appliance_nodes")]
    public async Task Retire_yml_refuses_every_node_or_a_host_that_is_no_node_before_it_touches_a_machine(string? limit, string refusal)
    {
        // The example inventory's machines do not exist: the refusal must come before any connection.
        var (exit, output) = await RunAsync("ansible-playbook", ["-i", "inventories/example/hosts.yml", "retire.yml", .. limit is null ? Array.Empty<string>() : ["--limit", limit]]);
        Assert.True(exit != 0 && output.Contains(refusal, StringComparison.Ordinal), output);
        Assert.DoesNotContain("UNREACHABLE", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--limit", "gpu-node-1")]
    [InlineData("--check", null)]
    public async Task Rotate_ca_yml_refuses_a_partial_or_check_run_before_it_touches_a_machine_or_the_CA(string option, string? value)
    {
        var (exit, output) = await RunAsync("ansible-playbook", ["-i", "inventories/example/hosts.yml", "rotate-ca.yml", option, .. value is null ? Array.Empty<string>() : [value]]);
        Assert.True(exit != 0 && output.Contains("without --limit and without --check", StringComparison.Ordinal), output);
        Assert.DoesNotContain("UNREACHABLE", output, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(Ansible, "inventories", "example", "pki")), "the CA was touched");
    }

    [Fact]
    public async Task Rotate_ca_yml_refuses_a_node_on_another_release_before_it_touches_the_CA()
    {
        // A node left on the previous release (an upgrade stopped midway) would read only one of the two CAs.
        var root = Directory.CreateDirectory(_root.Combine("opt")).FullName;
        Directory.CreateDirectory(Path.Combine(root, "releases", "appliance-1.0.0-linux-x64"));
        File.CreateSymbolicLink(Path.Combine(root, "current"), Path.Combine(root, "releases", "appliance-1.0.0-linux-x64"));
        var inventory = _root.Combine("hosts.json");
        File.WriteAllText(inventory, """
            {"all": {"children": {
              "appliance_nodes": {"hosts": {"node-a": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}}},
              "loadbalancers": {"hosts": {}}},
             "vars": {"appliance_root": "ROOT", "appliance_version": "1.1.0", "appliance_cluster_tls": true}}}
            """.Replace("ROOT", root, StringComparison.Ordinal));

        var (exit, output) = await RunAsync("ansible-playbook", ["-i", inventory, "rotate-ca.yml"]);

        Assert.True(exit != 0 && output.Contains("node-a runs appliance-1.0.0-linux-x64, not appliance-1.1.0-linux-x64", StringComparison.Ordinal), output);
        Assert.False(Directory.Exists(_root.Combine("pki")), "the CA was touched");
    }

    [Fact]
    public async Task Rollback_yml_refuses_before_any_node_moves_when_one_has_nothing_to_go_back_to()
    {
        // An upgrade to 1.1.0 stopped before node-a: it still runs 1.0.0 (previous 0.9.0), which a rollback must not
        // move down. node-b runs 1.1.0 but keeps no previous release; node-c runs 1.1.0 and its previous release's
        // folder was deleted to free space (the link is still there). node-d could go back: it must not move either.
        var nodes = new Dictionary<string, string>();
        foreach (var (node, current, previous) in new[]
            { ("node-a", "1.0.0", "0.9.0"), ("node-b", "1.1.0", (string?)null), ("node-c", "1.1.0", "1.0.0"), ("node-d", "1.1.0", "1.0.0") })
        {
            var root = Directory.CreateDirectory(_root.Combine($"opt-{node}")).FullName;
            foreach (var version in new[] { current, previous }.OfType<string>())
            {
                Directory.CreateDirectory(Path.Combine(root, "releases", $"appliance-{version}-linux-x64", "bin"));
                File.WriteAllText(Path.Combine(root, "releases", $"appliance-{version}-linux-x64", "bin", "appliance"), "#!/bin/sh\n");
            }

            if (node == "node-c")
            {
                Directory.Delete(Path.Combine(root, "releases", "appliance-1.0.0-linux-x64"), recursive: true);
            }

            File.CreateSymbolicLink(Path.Combine(root, "current"), Path.Combine(root, "releases", $"appliance-{current}-linux-x64"));
            if (previous is not null)
            {
                File.CreateSymbolicLink(Path.Combine(root, "previous"), Path.Combine(root, "releases", $"appliance-{previous}-linux-x64"));
            }

            nodes[node] = root;
        }

        var inventory = _root.Combine("rollback-hosts.json");
        File.WriteAllText(inventory, """
            {"all": {"children": {
              "appliance_nodes": {"hosts": {
                "node-a": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3", "appliance_root": "ROOT_A"},
                "node-b": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3", "appliance_root": "ROOT_B"},
                "node-c": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3", "appliance_root": "ROOT_C"},
                "node-d": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3", "appliance_root": "ROOT_D"}}},
              "loadbalancers": {"hosts": {}}},
             "vars": {"appliance_version": "1.1.0"}}}
            """.Replace("ROOT_A", nodes["node-a"], StringComparison.Ordinal).Replace("ROOT_B", nodes["node-b"], StringComparison.Ordinal)
            .Replace("ROOT_C", nodes["node-c"], StringComparison.Ordinal).Replace("ROOT_D", nodes["node-d"], StringComparison.Ordinal));

        var (exit, output) = await RunAsync("ansible-playbook", ["-i", inventory, "rollback.yml"]);

        Assert.True(exit != 0, output);
        Assert.Contains($"node-b runs appliance-1.1.0-linux-x64 and keeps no previous release to go back to ({nodes["node-b"]}/previous does not exist): no node was moved", output, StringComparison.Ordinal);
        Assert.Contains($"node-c runs appliance-1.1.0-linux-x64 and keeps no previous release to go back to ({nodes["node-c"]}/previous points at", output, StringComparison.Ordinal);
        Assert.DoesNotContain("node-a runs appliance-1.0.0", output, StringComparison.Ordinal); // not even reached: the run stopped first
        foreach (var (node, current) in new[] { ("node-a", "1.0.0"), ("node-c", "1.1.0"), ("node-d", "1.1.0") })
        {
            Assert.EndsWith($"appliance-{current}-linux-x64", new FileInfo(Path.Combine(nodes[node], "current")).LinkTarget, StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(nodes[node], ".moving")), node);
        }
    }

    [Fact]
    public async Task An_unpacking_cut_short_is_done_again_an_unpacked_release_needs_no_bundle_and_one_with_files_missing_is_named()
    {
        const string Release = "appliance-9.9.9-test-linux-x64";
        var bundles = Directory.CreateDirectory(_root.Combine("bundles")).FullName;
        var stage = Directory.CreateDirectory(Path.Combine(_root.Combine("stage"), Release, "bin")).FullName;
        File.WriteAllText(Path.Combine(stage, "..", "VERSION"), "9.9.9-test\n");
        File.WriteAllText(Path.Combine(stage, "appliance"), "#!/bin/sh\nexit 0\n"); // stands in for 'bundle verify'
        Assert.Equal(0, (await ProcessRunner.RunAsync("chmod", ["755", Path.Combine(stage, "appliance")], TimeSpan.FromMinutes(1))).ExitCode);
        var bundle = Path.Combine(bundles, Release + ".tar.gz");
        Assert.Equal(0, (await ProcessRunner.RunAsync("tar", ["-C", _root.Combine("stage"), "-czf", bundle, Release], TimeSpan.FromMinutes(1))).ExitCode);
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(bundle)));
        File.WriteAllText(bundle + ".sha256", $"{hash}  {Release}.tar.gz\n");

        // A node where an earlier unpacking stopped halfway (its VERSION already out, bin/ not yet).
        var root = Directory.CreateDirectory(_root.Combine("opt-unpack")).FullName;
        var cutShort = Directory.CreateDirectory(Path.Combine(root, "releases", $".unpacking-{Release}", Release)).FullName;
        File.WriteAllText(Path.Combine(cutShort, "VERSION"), "9.9.9-test\n");
        var playbook = _root.Combine("unpack-only.yml");
        File.WriteAllText(playbook, """
            - hosts: appliance_nodes
              gather_facts: false
              tasks:
                - ansible.builtin.include_role: {name: appliance, tasks_from: variables.yml, public: true}
                - ansible.builtin.include_role: {name: appliance, tasks_from: unpack.yml}
            """);
        var inventory = _root.Combine("unpack-hosts.json");
        File.WriteAllText(inventory, """
            {"all": {"children": {"appliance_nodes": {"hosts": {"node-a": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}}}},
             "vars": {"appliance_root": "ROOT", "appliance_version": "9.9.9-test", "appliance_bundle_dir": "BUNDLES"}}}
            """.Replace("ROOT", root, StringComparison.Ordinal).Replace("BUNDLES", bundles, StringComparison.Ordinal));

        // A disk without room for it (the margin set beyond any disk): refused before anything is unpacked.
        var (exit, output) = await RunAsync("ansible-playbook", ["-i", inventory, playbook, "-e", "appliance_unpack_free_space_margin=999999999999999999"]);
        Assert.True(exit != 0 && output.Contains("Nothing was unpacked", StringComparison.Ordinal), output);
        Assert.False(Directory.Exists(Path.Combine(root, "releases", Release)));

        (exit, output) = await RunAsync("ansible-playbook", ["-i", inventory, playbook]);

        Assert.True(exit == 0, output);
        Assert.True(File.Exists(Path.Combine(root, "releases", Release, "bin", "appliance")), output);
        Assert.False(Directory.Exists(Path.Combine(root, "releases", $".unpacking-{Release}")));

        // Once every node has the release, the control node no longer needs the bundle (archived after the install).
        File.Move(bundle, bundle + ".archived");
        (exit, output) = await RunAsync("ansible-playbook", ["-i", inventory, playbook]);
        Assert.True(exit == 0, output);
        File.Move(bundle + ".archived", bundle);

        // The old way's leftover: a release folder that looks unpacked but lacks its files is named, with what to do.
        Directory.Delete(Path.Combine(root, "releases", Release, "bin"), recursive: true);
        (exit, output) = await RunAsync("ansible-playbook", ["-i", inventory, playbook]);
        Assert.True(exit != 0, output);
        Assert.Contains($"{Release}/bin/appliance", output, StringComparison.Ordinal); // what is missing, not an empty message
        Assert.Contains($"Remove {root}/releases/{Release}", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_gpu_node_without_its_driver_or_cuda_libraries_is_stopped_naming_what_it_lacks()
    {
        // A stand-in nvidia-smi (this machine has no GPU) and this machine's real ldconfig, asked for CUDA's libraries
        // (not here) and for libc's (here).
        var tools = Directory.CreateDirectory(_root.Combine("gpu-tools")).FullName;
        async Task NvidiaSmi(string output)
        {
            var path = Path.Combine(tools, "nvidia-smi");
            // It answers only the query the check must ask (one argument each, commas and all).
            File.WriteAllText(path, $"#!/bin/sh\n[ \"$*\" = '--query-gpu=name,driver_version --format=csv,noheader' ] && [ $# = 2 ] || exit 9\nprintf '{output}'\n");
            Assert.Equal(0, (await ProcessRunner.RunAsync("chmod", ["755", path], TimeSpan.FromMinutes(1))).ExitCode);
        }

        var playbook = _root.Combine("gpu-check.yml");
        File.WriteAllText(playbook, """
            - hosts: localhost
              gather_facts: false
              environment: {PATH: "{{ tools | default('') }}/usr/sbin:/usr/bin:/sbin:/bin"}
              tasks:
                - ansible.builtin.include_role: {name: appliance, tasks_from: gpu_check.yml}
            """);
        Task<(int ExitCode, string Output)> Check(int gpus, string? libraries = null) => RunAsync("ansible-playbook",
            ["-i", "localhost,", "-c", "local", playbook, "-e", $"appliance_gpus_required={gpus}", "-e", $"tools={tools}:",
             .. libraries is null ? Array.Empty<string>() : ["-e", $"{{\"appliance_gpu_libraries\": {libraries}}}"]]);

        var (exit, output) = await Check(1);
        Assert.True(exit != 0 && output.Contains("nvidia-smi lists 0", StringComparison.Ordinal) && output.Contains("libcudnn.so.9", StringComparison.Ordinal), output);

        await NvidiaSmi(@"NVIDIA H200, 580.65.06\nNVIDIA H200, 575.51\n");
        (exit, output) = await Check(2, """["libc.so.6", "libcudnn.so.9"]""");
        Assert.True(exit != 0 && output.Contains("older than 580: 575.51", StringComparison.Ordinal) && output.Contains("finds no libcudnn.so.9 ", StringComparison.Ordinal), output);
        Assert.DoesNotContain("libc.so.6", output, StringComparison.Ordinal);

        await NvidiaSmi(@"NVIDIA H200, 580.65.06\nNVIDIA H200, 580.65.06\n");
        (exit, output) = await Check(2, """["libc.so.6"]""");
        Assert.True(exit == 0, output);
        (exit, output) = await Check(3, """["libc.so.6"]""");
        Assert.True(exit != 0 && output.Contains("should have 3 GPU(s)", StringComparison.Ordinal) && output.Contains("nvidia-smi lists 2", StringComparison.Ordinal), output);
    }

    [Fact]
    public void No_task_fetches_anything_from_a_network()
    {
        // Air-gapped sites: bundles and models come from the control node, packages from the site's own Debian mirror
        // (no repository is added, no cache refreshed); the only literal URLs in tasks are the node's own loopback.
        var fetching = new Regex(@"^\s*-?\s*(ansible\.builtin\.)?(get_url|git|pip|apt_key|apt_repository|deb822_repository)\s*:|remote_src:\s*true|update_cache:\s*true|https?://(?!127\.0\.0\.1)",
            RegexOptions.Multiline);
        var offenders = Directory.GetFiles(Path.Combine(Ansible, "roles"), "*.yml", SearchOption.AllDirectories)
            .Where(file => Path.GetFileName(Path.GetDirectoryName(file)) == "tasks")
            .Concat(Playbooks.Select(p => Path.Combine(Ansible, p)))
            .SelectMany(file => fetching.Matches(File.ReadAllText(file)).Select(m => $"{Path.GetRelativePath(Ansible, file)}: {m.Value.Trim()}"))
            .ToList();
        Assert.True(offenders.Count == 0, string.Join('\n', offenders));
    }

    [Fact]
    public void Every_role_has_the_usual_folders_and_a_readme()
    {
        foreach (var role in Roles)
        {
            var controlNodeOnly = ControlNodeRoles.Contains(role);
            foreach (var part in new[] { "defaults/main.yml", "tasks/main.yml", "meta/main.yml", "README.md" }.Concat(controlNodeOnly ? [] : ["handlers/main.yml"]))
            {
                Assert.True(File.Exists(Path.Combine(Ansible, "roles", role, part)), $"roles/{role}/{part} is missing");
            }

            if (!controlNodeOnly)
            {
                Assert.NotEmpty(Directory.GetFiles(Path.Combine(Ansible, "roles", role, "templates")));
            }
        }
    }

    [Fact]
    public void Every_role_variable_appears_in_the_example_inventory()
    {
        var inventory = string.Join('\n', Directory.GetFiles(Path.Combine(Ansible, "inventories", "example"), "*.yml", SearchOption.AllDirectories).Select(File.ReadAllText));
        var missing = Roles
            .SelectMany(role => TopLevelKey().Matches(File.ReadAllText(Path.Combine(Ansible, "roles", role, "defaults", "main.yml"))).Select(m => $"{role}: {m.Groups[1].Value}"))
            .Where(entry => !Regex.IsMatch(inventory, $@"^#?\s*{Regex.Escape(entry.Split(": ")[1])}:", RegexOptions.Multiline))
            .ToList();
        Assert.True(missing.Count == 0, "not in inventories/example: " + string.Join(", ", missing));
    }

    [Fact]
    public async Task The_shipped_unit_file_is_what_the_role_renders_with_its_defaults()
    {
        var rendered = _root.Combine("appliance.service");
        var (exit, output) = await RunAsync("ansible", ["localhost", "-c", "local", "-i", "localhost,", "-m", "ansible.builtin.template",
            "-a", $"src=roles/appliance/templates/appliance.service.j2 dest={rendered}", "-e", "@roles/appliance/defaults/main.yml"]);
        Assert.True(exit == 0, output);
        Assert.Equal(Directives(rendered), Directives(Path.Combine(RepositoryPaths.Root, "appliance", "appliance.service")));
    }

    [Fact]
    public async Task Node_settings_keep_loopback_beside_a_node_address_and_quote_a_database_password()
    {
        // Ansible's own calls (ready check, drain, model loads) go to 127.0.0.1; a vault password may hold ; = ' or ".
        const string Password = "p;w=d\"x'y";
        var rendered = _root.Combine("appsettings.json");
        var (exit, output) = await RunAsync("ansible", ["localhost", "-c", "local", "-i", "localhost,", "-m", "ansible.builtin.template",
            "-a", $"src=roles/appliance/templates/appsettings.json.j2 dest={rendered}", "-e", "@roles/appliance/defaults/main.yml",
            "-e", """{"appliance_listen_address":"10.0.0.5","appliance_audit_store":"postgresql","appliance_postgres_host":"db","appliance_node_id":"n1","appliance_postgres_password":"p;w=d\"x'y"}"""]);
        Assert.True(exit == 0, output);

        using var settings = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(rendered));
        Assert.Equal("http://10.0.0.5:8080;http://127.0.0.1:8080", settings.RootElement.GetProperty("Urls").GetString());
        var connection = new Npgsql.NpgsqlConnectionStringBuilder(settings.RootElement.GetProperty("Audit").GetProperty("PostgresConnectionString").GetString());
        Assert.Equal((Password, "db", "appliance"), (connection.Password, connection.Host, connection.Database));

        // The firewall's outbound rules read the database host from that string: not from inside the password.
        var egress = _root.Combine("egress.json");
        (exit, output) = await RunAsync("ansible", ["localhost", "-c", "local", "-i", "localhost,", "-m", "ansible.builtin.template",
            "-a", $"src=roles/appliance/templates/egress-targets.j2 dest={egress}", "-e", "@roles/appliance/defaults/main.yml",
            "-e", """{"appliance_realm_endpoints":[],"appliance_audit_store":"postgresql","appliance_postgres_host":"db","appliance_node_id":"n1","appliance_postgres_password":"a;Host=elsewhere;Port=1"}"""]);
        Assert.True(exit == 0, output);
        var hosts = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(egress)).RootElement.EnumerateArray()
            .Select(target => $"{target.GetProperty("host").GetString()}:{target.GetProperty("port").GetInt32()}").ToList();
        Assert.Contains("db:5432", hosts);
        Assert.DoesNotContain(hosts, host => host.StartsWith("elsewhere", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_settings_the_role_writes_for_the_example_inventory_read_as_written()
    {
        // The node refuses a key it does not know: what the role writes (its variables and appliance_settings merged
        // over them) must hold none.
        var rendered = _root.Combine("example-appsettings.json");
        var playbook = _root.Combine("render-settings.yml");
        File.WriteAllText(playbook, $$"""
            - hosts: gpu-node-1
              connection: local
              gather_facts: false
              vars: { ansible_python_interpreter: /usr/bin/python3 }
              tasks:
                - ansible.builtin.include_role: { name: appliance, tasks_from: variables.yml, public: true }
                - ansible.builtin.template: { src: "{{Path.Combine(Ansible, "roles", "appliance", "templates", "appsettings.json.j2")}}", dest: "{{rendered}}", mode: "0600" }
            """);
        var (exit, output) = await RunAsync("ansible-playbook", ["-i", "inventories/example", playbook]);
        Assert.True(exit == 0, output);

        var configuration = new ConfigurationBuilder().AddJsonFile(rendered).Build();
        var check = new Appliance.Host.Options.WrittenSettingsValidator(configuration).Validate(null, new Appliance.Host.Options.WrittenSettings());
        Assert.True(check.Succeeded, check.FailureMessage);
        Assert.Equal("spread", configuration["Pool:Placement"]); // appliance_settings was merged in
    }

    [Fact]
    public async Task The_shipped_haproxy_example_is_what_the_role_renders_for_the_example_inventory()
    {
        var rendered = _root.Combine("haproxy.cfg");
        var (exit, output) = await RunAsync("ansible", ["lb-1", "-c", "local", "-i", "inventories/example/hosts.yml", "-m", "ansible.builtin.template",
            "-a", $"src=roles/haproxy/templates/haproxy.cfg.j2 dest={rendered}"]);
        Assert.True(exit == 0, output);
        Assert.Equal(Directives(rendered), Directives(Path.Combine(RepositoryPaths.Root, "appliance", "haproxy.cfg")));
    }

    public void Dispose() => _root.Dispose();

    private static string Directives(string path) => string.Join('\n', File.ReadAllLines(path).Where(line => !line.TrimStart().StartsWith('#')));

    private static Task<(int ExitCode, string Output)> RunAsync(string program, string[] arguments) =>
        ProcessRunner.RunAsync(program, arguments, TimeSpan.FromMinutes(5), Ansible,
            new Dictionary<string, string> { ["ANSIBLE_CONFIG"] = Path.Combine(Ansible, "ansible.cfg"), ["ANSIBLE_NOCOLOR"] = "1" });

    [GeneratedRegex(@"^([a-z][a-z0-9_]*):", RegexOptions.Multiline)]
    private static partial Regex TopLevelKey();
}
