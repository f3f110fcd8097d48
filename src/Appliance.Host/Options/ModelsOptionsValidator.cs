using Microsoft.Extensions.Options;

namespace Appliance.Host.Options;

/// <summary>
/// Checks the declared models at start and each time the settings files are read again; each failure names its
/// configuration key.
/// </summary>
public sealed class ModelsOptionsValidator(IConfiguration configuration, IOptions<IdentityOptions> identity) : IValidateOptions<ModelsOptions>
{
    public ValidateOptionsResult Validate(string? name, ModelsOptions options)
    {
        var failures = new List<string>();
        // What the binder would pass over in silence: a misspelled AllowedGroups leaves the model open to every chat user,
        // a value of the wrong type drops the whole model (then "not declared"), one value where a list belongs is an empty list.
        failures.AddRange(SettingsAsWritten.Check(configuration.GetSection(ModelsOptions.Section), typeof(Dictionary<string, ModelOptions>)));
        var levels = RunningLevels();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (id, model) in options.Models)
        {
            var key = $"{ModelsOptions.Section}:{id}";
            if (!names.Add(id))
            {
                failures.Add($"{key}: the name '{id}' is used twice");
            }

            if (string.IsNullOrWhiteSpace(model.Path))
            {
                failures.Add($"{key}:Path is required (the model folder)");
            }
            else if (!Directory.Exists(model.Path))
            {
                failures.Add($"{key}:Path: folder '{model.Path}' {SettingsMistakes.Missing}");
            }

            foreach (var alias in model.Aliases)
            {
                if (string.IsNullOrWhiteSpace(alias) || !names.Add(alias))
                {
                    failures.Add($"{key}:Aliases: '{alias}' is empty or already names another model");
                }
            }

            Check(failures, $"{key}:MaxBatchSize", model.MaxBatchSize is >= 1 and <= 256, "must be between 1 and 256");
            Check(failures, $"{key}:PrefillTokenBudget", model.PrefillTokenBudget >= 16, "must be at least 16");
            Check(failures, $"{key}:MaxQueuedRequests", model.MaxQueuedRequests >= 1, "must be at least 1");
            Check(failures, $"{key}:ContextLength", model.ContextLength is null or >= 2, "must be at least 2");
            Check(failures, $"{key}:LogitsBudgetBytes", model.LogitsBudgetBytes is null or > 0, "must be positive when set");
            Check(failures, $"{key}:PrefixCacheTokens", model.PrefixCacheTokens is null or >= 0, "must be 0 (off) or more");
            Check(failures, $"{key}:SpeculativeTokens", model.SpeculativeTokens is >= 0 and <= 64, "must be 0 (off) to 64");
            Check(failures, $"{key}:Replicas", model.Replicas is >= 1 and <= 64, "must be between 1 and 64");
            Check(failures, $"{key}:Device", model.Device.ToLowerInvariant() is "auto" or "gpu" or "cpu", "must be auto, gpu or cpu");
            Check(failures, $"{key}:Pooling", model.Pooling is "auto" or "mean" or "cls", "must be auto, mean or cls");
            Check(failures, $"{key}:MemoryBytes", model.MemoryBytes is null or > 0, "must be positive when set");
            Check(failures, $"{key}:CudaArenaExtendStrategy", model.CudaArenaExtendStrategy is "next_power_of_two" or "same_as_requested", "must be next_power_of_two or same_as_requested");
            Check(failures, $"{key}:IntraOpThreads", model.IntraOpThreads >= 0, "must not be negative");
            Check(failures, $"{key}:ToolCallFormat", model.ToolCallFormat == "auto" || Prompting.ToolCallFormat.Named(model.ToolCallFormat) is not null,
                $"must be auto or one of {string.Join(", ", Prompting.ToolCallFormat.All.Select(f => f.Name))}");
            Check(failures, $"{key}:Reasoning", model.Reasoning == "auto" || Prompting.Reasoning.ThinkingTags.TryNamed(model.Reasoning, out _), "must be auto, think or none");
            Check(failures, $"{key}:ChatTemplate", model.ChatTemplate == "auto" || Prompting.BuiltInChatTemplates.Names.Contains(model.ChatTemplate),
                $"must be auto or one of {string.Join(", ", Prompting.BuiltInChatTemplates.Names)}");
            Check(failures, $"{key}:DefaultTemperature", model.DefaultTemperature is null or (>= 0 and <= 2), "must be between 0 and 2");
            Check(failures, $"{key}:DefaultTopP", model.DefaultTopP is null or (> 0 and <= 1), "must be greater than 0 and at most 1");
            Check(failures, $"{key}:DefaultMaxTokens", model.DefaultMaxTokens is null or >= 1, "must be at least 1");
            Check(failures, $"{key}:Classification", model.Classification.Length == 0 || levels.Count == 0 || levels.Contains(model.Classification, StringComparer.OrdinalIgnoreCase),
                $"must be one of {string.Join(", ", levels)}");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>
    /// The classification levels the node enforces (read at its start, as the access rules are), not those of a file
    /// edited since; none while the Identity section itself is broken, which its own validator reports, once.
    /// </summary>
    private IReadOnlyList<string> RunningLevels()
    {
        try
        {
            return identity.Value.ClassificationLevels;
        }
        catch (Exception exception) when (exception is OptionsValidationException or InvalidOperationException)
        {
            return [];
        }
    }

    private static void Check(List<string> failures, string key, bool valid, string rule)
    {
        if (!valid)
        {
            failures.Add($"{key} {rule}");
        }
    }
}
