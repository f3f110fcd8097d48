namespace Appliance.Tests.Common;

/// <summary>The `appliance` command as built beside the tests (tests run it as its own process, like an operator).</summary>
public static class ApplianceCli
{
    public static string Path { get; } =
        System.IO.Path.Combine(RepositoryPaths.Root, "src", "Appliance.Cli", "bin", RepositoryPaths.Configuration, "net10.0", "appliance.dll");

    public static Task<(int ExitCode, string Output)> RunAsync(params string[] arguments) => ProcessRunner.RunAsync("dotnet", [Path, .. arguments]);
}
