using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Deployment;

/// <summary>
/// Offline bundles built once per test run (ansible/tools/build-bundle.sh takes about a minute) and shared by the
/// deployment tests, which only read them.
/// </summary>
internal static class BundleBuilds
{
    public const string Version = "1.0.0-ci";
    public const string NextVersion = "1.0.1-ci";

    private static readonly TempFolder Folder = new("bundles");
    private static readonly Lazy<Task<string>> Built = new(() => BuildAsync(Version));
    private static readonly Lazy<Task<string>> Relabelled = new(() => RelabelAsync(Version, NextVersion));

    // The bundles are hundreds of megabytes: removed when the test process ends, and those of earlier test processes
    // that ended too abruptly for that (the test host may be stopped before its exit handlers finish) on the next run.
    static BundleBuilds()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Folder.Dispose();
        foreach (var stale in Directory.EnumerateDirectories(Path.GetDirectoryName(Folder.Path)!, "bundles-*"))
        {
            if (int.TryParse(Path.GetFileName(stale).Split('-')[1], System.Globalization.CultureInfo.InvariantCulture, out var pid) && !IsRunning(pid))
            {
                Directory.Delete(stale, recursive: true);
            }
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>The folder holding appliance-&lt;version&gt;-linux-x64.tar.gz and .sha256 for <see cref="Version"/>.</summary>
    public static Task<string> CurrentAsync() => Built.Value;

    /// <summary>The same folder once it also holds <see cref="NextVersion"/>: the same build labelled as the next release.</summary>
    public static async Task<string> WithNextAsync()
    {
        await Relabelled.Value;
        return Folder.Path;
    }

    public static string Archive(string version) => Path.Combine(Folder.Path, $"appliance-{version}-linux-x64.tar.gz");

    private static async Task<string> BuildAsync(string version)
    {
        var (exit, log) = await ProcessRunner.RunAsync("bash", [Path.Combine(RepositoryPaths.Root, "ansible", "tools", "build-bundle.sh"), version, Folder.Path], TimeSpan.FromMinutes(10));
        return exit == 0 ? Folder.Path : throw new InvalidOperationException($"build-bundle.sh failed: {log}");
    }

    /// <summary>
    /// Unpacks the built bundle, renames it, writes its VERSION and a new manifest with its own CLI, and packs it again:
    /// an upgrade target without a second publish (what changes between real releases is the files, which the
    /// manifest covers either way).
    /// </summary>
    private static async Task<string> RelabelAsync(string from, string to)
    {
        await Built.Value;
        using var stage = new TempFolder("relabel");
        var name = $"appliance-{to}-linux-x64";
        var script = $"""
            set -e
            tar -C '{stage.Path}' -xzf '{Archive(from)}'
            mv '{stage.Path}/appliance-{from}-linux-x64' '{stage.Path}/{name}'
            echo '{to}' > '{stage.Path}/{name}/VERSION'
            '{stage.Path}/{name}/bin/appliance' bundle manifest '{stage.Path}/{name}'
            tar -C '{stage.Path}' -I 'gzip -1' -cf '{Archive(to)}' '{name}'
            cd '{Folder.Path}' && sha256sum '{name}.tar.gz' > '{name}.tar.gz.sha256'
            """;
        var (exit, log) = await ProcessRunner.RunAsync("bash", ["-c", script], TimeSpan.FromMinutes(5));
        return exit == 0 ? Folder.Path : throw new InvalidOperationException($"relabelling the bundle failed: {log}");
    }
}
