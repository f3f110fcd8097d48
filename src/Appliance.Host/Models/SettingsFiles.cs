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
                // A file mid-edit or broken: the last values read stay (the notification path would read it again).
                LogRereadFailed(logger, file.Source.Path ?? "?", exception.Message);
            }
        }
    }

    [LoggerMessage(EventId = 3017, Level = LogLevel.Warning, Message = "The settings file {Path} could not be read again; its last values stay: {Reason}")]
    private static partial void LogRereadFailed(ILogger logger, string path, string reason);
}
