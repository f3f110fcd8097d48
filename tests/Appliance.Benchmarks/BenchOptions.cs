using System.Globalization;

namespace Appliance.Benchmarks;

/// <summary>Command-line options of the load driver.</summary>
internal sealed record BenchOptions(
    string ModelsFolder,
    IReadOnlyList<string> Sizes,
    IReadOnlyList<string> Layouts,
    int PromptTokens,
    int NewTokens,
    int Repeats)
{
    public static BenchOptions Parse(string[] args)
    {
        string Value(string name, string fallback)
        {
            var at = Array.IndexOf(args, name);
            return at >= 0 && at + 1 < args.Length ? args[at + 1] : fallback;
        }

        return new BenchOptions(
            Value("--models", Path.Combine(Path.GetTempPath(), "appliance-bench-models")),
            Value("--sizes", "small,base").Split(',', StringSplitOptions.RemoveEmptyEntries),
            Value("--layouts", "concat,shared").Split(',', StringSplitOptions.RemoveEmptyEntries),
            int.Parse(Value("--prompt-tokens", "64"), CultureInfo.InvariantCulture),
            int.Parse(Value("--new-tokens", "128"), CultureInfo.InvariantCulture),
            int.Parse(Value("--repeats", "3"), CultureInfo.InvariantCulture));
    }
}
