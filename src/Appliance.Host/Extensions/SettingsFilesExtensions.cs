using Microsoft.Extensions.Configuration.Json;

namespace Appliance.Host.Extensions;

/// <summary>
/// Settings files outside the installed release (APPLIANCE_SETTINGS: paths separated by ':'), so that an upgrade
/// replaces the binaries and keeps the node's configuration. They rank above appsettings*.json and below environment
/// variables and the command line, and are re-read when they change (a model declared there can be loaded without a restart).
/// </summary>
public static class SettingsFilesExtensions
{
    public const string Variable = "APPLIANCE_SETTINGS";

    public static WebApplicationBuilder AddSettingsFiles(this WebApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        var paths = (configuration[Variable] ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var sources = (IList<IConfigurationSource>)configuration.Sources;
        var position = LastJsonSource(sources) + 1;
        foreach (var path in paths)
        {
            var full = Path.GetFullPath(path);
            if (!File.Exists(full))
            {
                throw new SettingsException($"{Variable} names the settings file {full}, which {SettingsMistakes.Missing}");
            }

            var source = new JsonConfigurationSource { Path = Path.GetFileName(full), Optional = false, ReloadOnChange = true };
            source.FileProvider = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(Path.GetDirectoryName(full)!);
            sources.Insert(position++, source);
        }

        return builder;
    }

    private static int LastJsonSource(IList<IConfigurationSource> sources)
    {
        for (var index = sources.Count - 1; index >= 0; index--)
        {
            if (sources[index] is JsonConfigurationSource)
            {
                return index;
            }
        }

        return -1;
    }
}
