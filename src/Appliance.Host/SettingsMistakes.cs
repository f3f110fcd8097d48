using Microsoft.Extensions.Options;

namespace Appliance.Host;

/// <summary>
/// A start stopped by settings that cannot work: each mistake on its own line at the end of the output (where a
/// journal excerpt looks), and exit code 78 (EX_CONFIG), which the unit does not restart: a restart cannot correct a
/// setting, and a loop of them would bury the reason under stack traces. A path that does not exist is the exception:
/// a disk or share mounted late makes it appear, so that start ends with 1 and systemd tries again.
/// </summary>
public static class SettingsMistakes
{
    public const int ExitCode = 78;

    /// <summary>The exit of a start refused for a path that may still appear.</summary>
    public const int RetryExitCode = 1;

    /// <summary>How every check of a path words its refusal (settings files, model folders, TLS and key ring files).</summary>
    public const string Missing = "does not exist";

    /// <summary>The mistakes a failed start reports, or none when it failed for another reason.</summary>
    public static IReadOnlyList<string> In(Exception exception)
    {
        var causes = exception is AggregateException aggregate ? aggregate.Flatten().InnerExceptions : [exception];
        return causes.All(IsSettings) ? [.. causes.SelectMany(Mistakes).Distinct(StringComparer.Ordinal)] : [];
    }

    /// <summary>Ours, or the binder's refusal of a value of the wrong type (read while the node is put together).</summary>
    private static bool IsSettings(Exception exception) =>
        exception is OptionsValidationException or SettingsException
        || (exception is InvalidOperationException && exception.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal));

    private static IEnumerable<string> Mistakes(Exception exception) =>
        exception is OptionsValidationException validation ? validation.Failures : [exception.Message];

    public static int Report(IReadOnlyList<string> mistakes, TextWriter error)
    {
        var mayAppear = mistakes.Any(m => m.Contains(Missing, StringComparison.Ordinal));
        error.WriteLine($"The appliance did not start: {mistakes.Count} setting(s) to correct (in the settings files, the environment or the command line):");
        foreach (var mistake in mistakes)
        {
            error.WriteLine($"  - {mistake}");
        }

        if (mayAppear)
        {
            error.WriteLine("  (a path that does not exist may be on a disk or share not mounted yet: the service is tried again)");
        }

        error.Flush();
        return mayAppear ? RetryExitCode : ExitCode;
    }
}
