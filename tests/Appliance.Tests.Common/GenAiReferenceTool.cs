using System.Diagnostics;

namespace Appliance.Tests.Common;

/// <summary>
/// Runs tests/Appliance.Reference.GenAi (onnxruntime-genai 0.18.0) as its own process, so its CPU build of ONNX
/// Runtime never shares an output folder with the product's GPU build.
/// </summary>
public static class GenAiReferenceTool
{
    public static string Run(TimeSpan timeout, params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(ToolPath());
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start dotnet");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"onnxruntime-genai reference did not finish within {timeout}");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"onnxruntime-genai reference failed ({process.ExitCode}): {stderr.Result}");
        }

        return stdout.Result;
    }

    /// <summary>The tool's build output beside the caller's: tests/&lt;caller&gt;/bin/&lt;Configuration&gt;/net10.0.</summary>
    private static string ToolPath()
    {
        var here = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = here.Parent!.Name;
        var tests = here.Parent!.Parent!.Parent!.Parent!.FullName;
        var tool = Path.Combine(tests, "Appliance.Reference.GenAi", "bin", configuration, "net10.0", "Appliance.Reference.GenAi.dll");
        return File.Exists(tool) ? tool : throw new FileNotFoundException($"reference tool not built at {tool}", tool);
    }
}
