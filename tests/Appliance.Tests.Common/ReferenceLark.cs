using System.Diagnostics;
using System.Text.Json;

namespace Appliance.Tests.Common;

/// <summary>The real Lark parser (Debian's python3-lark, tests/reference-py/lark_parse.py), the reference for the appliance's Lark grammars.</summary>
public static class ReferenceLark
{
    /// <summary>For each text, whether Lark's Earley parser parses it from the grammar's 'start' rule.</summary>
    public static IReadOnlyList<bool> Parses(string grammar, IReadOnlyList<string> texts)
    {
        var start = new ProcessStartInfo("/usr/bin/python3", [Path.Combine(RepositoryPaths.Root, "tests", "reference-py", "lark_parse.py")])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardInputEncoding = new System.Text.UTF8Encoding(false),
            StandardOutputEncoding = System.Text.Encoding.UTF8,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start /usr/bin/python3");
        process.StandardInput.Write(JsonSerializer.Serialize(new { grammar, texts }));
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return process.ExitCode == 0
            ? JsonSerializer.Deserialize<List<bool>>(stdout.Result)!
            : throw new InvalidOperationException($"reference Lark failed (is python3-lark installed? .ci/run installs it): {stderr.Result}");
    }
}
