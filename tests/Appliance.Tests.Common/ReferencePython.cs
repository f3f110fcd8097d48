using System.Diagnostics;
using System.Text.Json;

namespace Appliance.Tests.Common;

/// <summary>Runs a reference script of tests/reference-py with Debian's /usr/bin/python3: a JSON request on stdin, its answer on stdout.</summary>
public static class ReferencePython
{
    /// <summary>The script's output; <paramref name="package"/> names the Debian package the error message points to.</summary>
    public static string Run(string script, object request, string package)
    {
        var start = new ProcessStartInfo("/usr/bin/python3", [Path.Combine(RepositoryPaths.Root, "tests", "reference-py", script)])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardInputEncoding = new System.Text.UTF8Encoding(false),
            StandardOutputEncoding = System.Text.Encoding.UTF8,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start /usr/bin/python3");
        process.StandardInput.Write(JsonSerializer.Serialize(request));
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return process.ExitCode == 0
            ? stdout.Result
            : throw new InvalidOperationException($"{script} failed (is {package} installed? .ci/run installs it): {stderr.Result}");
    }
}
