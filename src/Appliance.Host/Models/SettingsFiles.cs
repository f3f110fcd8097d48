using Microsoft.Extensions.Configuration;

namespace Appliance.Host.Models;

/// <summary>
/// Re-reads, on demand, the settings files that are otherwise re-read when they change (appsettings.json and the files
/// of APPLIANCE_SETTINGS), so that loading or reloading a model acts on the files as they are at that moment. A change
/// notification can come late or never (inotify limits reached, a network file system, a bind mount replaced), and the
/// models role writes models.json and asks for the load a fraction of a second later.
/// </summary>
internal sealed partial class SettingsFiles(IConfiguration configuration, ILogger<SettingsFiles> logger)
{
    public void Reread()
    {
        if (configuration is not IConfigurationRoot root)
        {
            return;
        }

        foreach (var file in root.Providers.OfType<FileConfigurationProvider>().Where(p => p.Source.ReloadOnChange))
        {
            try
            {
                // Raises the configuration's change token when read: options monitors see the new values at once.
                file.Load();
            }
            catch (Exception exception) when (exception is InvalidDataException or IOException or UnauthorizedAccessException or FormatException)
            {
                // A file mid-edit, broken or missing: this read changes nothing (the watcher's own read may empty it).
                LogRereadFailed(logger, file.Source.Path ?? "?", exception.Message);
            }
            catch (AggregateException exception)
            {
                // The change token's listeners rebuilt their options from the new values and one refused them (a model
                // path that does not exist): the values are read; whoever uses those options reports why, as before.
                LogRereadRefused(logger, file.Source.Path ?? "?", exception.Flatten().InnerExceptions.FirstOrDefault()?.Message ?? exception.Message);
            }
        }
    }

    [LoggerMessage(EventId = 3023, Level = LogLevel.Warning, Message = "The settings file {Path} could not be read again: {Reason}")]
    private static partial void LogRereadFailed(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 3024, Level = LogLevel.Warning, Message = "The settings file {Path} was read again, and settings built from it are invalid: {Reason}")]
    private static partial void LogRereadRefused(ILogger logger, string path, string reason);
}
