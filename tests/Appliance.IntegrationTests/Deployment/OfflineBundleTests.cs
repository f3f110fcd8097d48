using System.Diagnostics;
using System.Net;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Deployment;

/// <summary>
/// The offline bundle as the Ansible roles will receive it: built by ansible/tools/build-bundle.sh, unpacked, checked
/// against its manifest, and its host started with no .NET on the PATH. Slow (a self-contained publish): category Slow.
/// </summary>
[Trait("Category", "Slow")]
[Collection(DeploymentCollection.Name)]
public sealed class OfflineBundleTests : IDisposable
{
    private readonly TempFolder _root = new("bundle");

    [Fact]
    public async Task The_bundle_verifies_runs_without_dotnet_and_a_changed_file_is_named()
    {
        const string version = BundleBuilds.Version;
        var dist = await BundleBuilds.CurrentAsync();
        var archive = BundleBuilds.Archive(version);
        var (sums, sumLog) = await ProcessRunner.RunAsync("bash", ["-c", $"cd '{dist}' && sha256sum -c appliance-{version}-linux-x64.tar.gz.sha256"]);
        Assert.True(sums == 0, sumLog);
        var (unpacked, tarLog) = await ProcessRunner.RunAsync("tar", ["-xzf", archive, "-C", _root.Path]);
        Assert.True(unpacked == 0, tarLog);
        var bundle = _root.Combine($"appliance-{version}-linux-x64");
        var cli = Path.Combine(bundle, "bin", "appliance");

        var (verified, verifyLog) = await ProcessRunner.RunAsync(cli, ["bundle", "verify", bundle]);
        Assert.True(verified == 0, verifyLog);
        Assert.Contains($"OK bundle {version}", verifyLog, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(bundle, "appliance", "appliance.service")));
        Assert.True(File.Exists(Path.Combine(bundle, "bin", "wwwroot", "_framework", "blazor.web.js")), "the console's assets are not in the bundle");

        await AnswersWithoutDotnetAsync(Path.Combine(bundle, "bin", "Appliance.Host"));

        await File.AppendAllTextAsync(Path.Combine(bundle, "appliance", "appsettings.Production.json"), " ");
        var (refused, refusedLog) = await ProcessRunner.RunAsync(cli, ["bundle", "verify", bundle]);
        Assert.Equal(1, refused);
        Assert.Contains("appliance/appsettings.Production.json", refusedLog, StringComparison.Ordinal);
    }

    public void Dispose() => _root.Dispose();

    /// <summary>The bundled host, started with an empty PATH and no DOTNET_ROOT, answers /health/live.</summary>
    private async Task AnswersWithoutDotnetAsync(string host)
    {
        var port = HostProcess.FreePort();
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.GetDirectoryName(host)! };
        foreach (var argument in new[] { $"--urls=http://127.0.0.1:{port}", "--environment=Development", $"--Appliance:DataFolder={_root.Combine("data")}", "--Appliance:BuiltInEmbeddings=false" })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["PATH"] = _root.Combine("empty-path");
        start.Environment.Remove("DOTNET_ROOT");
        using var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            var deadline = DateTime.UtcNow.AddMinutes(1);
            HttpStatusCode? status = null;
            while (status != HttpStatusCode.OK && DateTime.UtcNow < deadline && !process.HasExited)
            {
                try
                {
                    status = (await http.GetAsync("/health/live")).StatusCode;
                }
                catch (HttpRequestException)
                {
                    await Task.Delay(200);
                }
            }

            Assert.Equal(HttpStatusCode.OK, status);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
        }
    }
}
