using Appliance.Runtime.Onnx.Synthetic;

namespace Appliance.Benchmarks;

/// <summary>Synthetic benchmark models, written once into a cache folder and reused.</summary>
internal static class BenchModels
{
    public static string Ensure(string root, string size, string layout)
    {
        var spec = size switch
        {
            "tiny" => SyntheticModelSpec.Tiny,
            "small" => SyntheticModelSpec.Small,
            "base" => SyntheticModelSpec.Base,
            _ => throw new ArgumentException($"unknown size '{size}' (tiny, small, base)"),
        };
        spec = spec with
        {
            ContextLength = Math.Min(spec.ContextLength, 512),
            Layout = layout == "shared" ? KvCacheLayout.SharedBuffer : KvCacheLayout.Concatenating,
        };
        var folder = Path.Combine(root, $"{size}-{layout}");
        if (!File.Exists(Path.Combine(folder, "manifest.json")))
        {
            Console.Error.WriteLine($"writing {folder} ({spec.ParameterCount:N0} parameters)");
            SyntheticModelFolder.Write(spec, folder);
        }

        return folder;
    }

    /// <summary>The same deterministic prompts the reference tool's bench mode uses.</summary>
    public static int[] Prompt(int index, int length) =>
        [.. Enumerable.Range(0, length).Select(j => ((index * 7919) + (j * 104729) + 13) % 50000)];
}
