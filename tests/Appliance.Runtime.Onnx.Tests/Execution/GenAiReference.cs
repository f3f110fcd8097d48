using System.Diagnostics;
using System.Text.Json;

namespace Appliance.Runtime.Onnx.Tests.Execution;

/// <summary>Runs onnxruntime-genai (tests/Appliance.Reference.GenAi) in its own process on a model folder.</summary>
internal static class GenAiReference
{
    public static int[][] Generate(string modelFolder, int[][] prompts, int newTokens)
    {
        var promptsFile = Path.Combine(Path.GetTempPath(), $"appliance-prompts-{Guid.NewGuid():N}.json");
        File.WriteAllText(promptsFile, JsonSerializer.Serialize(prompts));
        try
        {
            var output = Run("generate", modelFolder, promptsFile, newTokens.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return JsonSerializer.Deserialize<int[][]>(output) ?? throw new InvalidDataException("no output");
        }
        finally
        {
            File.Delete(promptsFile);
        }
    }

    private static string Run(params string[] arguments)
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
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("onnxruntime-genai reference did not finish within 3 minutes");
        }

        Assert.True(process.ExitCode == 0, $"reference tool failed ({process.ExitCode}): {stderr.Result}");
        return stdout.Result;
    }

    /// <summary>The reference tool's build output, next to this test assembly's configuration.</summary>
    private static string ToolPath()
    {
        // tests/Appliance.Runtime.Onnx.Tests/bin/<Configuration>/net10.0
        var here = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = here.Parent!.Name;
        var tests = here.Parent!.Parent!.Parent!.Parent!.FullName;
        var tool = Path.Combine(tests, "Appliance.Reference.GenAi", "bin", configuration, "net10.0", "Appliance.Reference.GenAi.dll");
        Assert.True(File.Exists(tool), $"reference tool not built at {tool}");
        return tool;
    }
}
