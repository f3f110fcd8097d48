using Appliance.Host.Models;
using Appliance.Tests.Common;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace Appliance.IntegrationTests.Host;

/// <summary>
/// A settings file read again on demand, as a model load does, on a file system that never reports a change (the case
/// the reread exists for: the configuration's own watcher would leave the old values in place).
/// </summary>
public sealed class SettingsFilesTests : IDisposable
{
    private readonly TempFolder _root = new("settings-files");

    [Fact]
    public void A_changed_file_is_read_again_and_the_change_is_signalled()
    {
        var path = _root.Combine("models.json");
        File.WriteAllText(path, """{ "Models": { "first": { "Path": "/m/first" } } }""");
        var configuration = Build();
        var signalled = 0;
        ChangeToken.OnChange(configuration.GetReloadToken, () => signalled++);

        File.WriteAllText(path, """{ "Models": { "first": { "Path": "/m/first" }, "second": { "Path": "/m/second" } } }""");
        Assert.Null(configuration["Models:second:Path"]); // nothing told the configuration
        new SettingsFiles(configuration, NullLogger<SettingsFiles>.Instance).Reread();

        Assert.Equal("/m/second", configuration["Models:second:Path"]);
        Assert.True(signalled > 0, "options monitors were not told");
    }

    [Fact]
    public void A_broken_or_missing_file_read_again_changes_nothing()
    {
        var path = _root.Combine("models.json");
        File.WriteAllText(path, """{ "Models": { "first": { "Path": "/m/first" } } }""");
        var configuration = Build();
        var files = new SettingsFiles(configuration, NullLogger<SettingsFiles>.Instance);
        File.WriteAllText(path, """{ "Models": { "first": { "Path": "/m/changed" } } }""");
        files.Reread();
        Assert.Equal("/m/changed", configuration["Models:first:Path"]);

        File.WriteAllText(path, """{ "Models": { "first": """);
        files.Reread();
        Assert.Equal("/m/changed", configuration["Models:first:Path"]);

        File.Delete(path);
        files.Reread();
        Assert.Equal("/m/changed", configuration["Models:first:Path"]);
    }

    [Fact]
    public void Values_that_options_refuse_are_read_and_the_refusal_is_left_to_the_options_user()
    {
        // As ModelsOptions refuses a model folder that does not exist: the monitor rebuilds its options while the
        // file is read, and its validation fails inside that read.
        var path = _root.Combine("models.json");
        File.WriteAllText(path, """{ "Path": "good" }""");
        var configuration = Build();
        var services = new ServiceCollection();
        services.AddOptions<Declaration>().Bind(configuration).Validate(d => d.Path != "bad", "the path is bad");
        using var provider = services.BuildServiceProvider();
        var monitor = provider.GetRequiredService<IOptionsMonitor<Declaration>>();
        Assert.Equal("good", monitor.CurrentValue.Path);

        File.WriteAllText(path, """{ "Path": "bad" }""");
        new SettingsFiles(configuration, NullLogger<SettingsFiles>.Instance).Reread(); // does not throw

        Assert.Equal("bad", configuration["Path"]);
        Assert.Throws<OptionsValidationException>(() => monitor.CurrentValue);
    }

    public void Dispose() => _root.Dispose();

    private IConfigurationRoot Build() => new ConfigurationBuilder()
        .Add(new JsonConfigurationSource { Path = "models.json", Optional = false, ReloadOnChange = true, FileProvider = new Unwatched(_root.Path) })
        .Build();

    private sealed class Declaration
    {
        public string Path { get; set; } = string.Empty;
    }

    /// <summary>The folder's files, with change notifications that never come.</summary>
    private sealed class Unwatched(string root) : IFileProvider
    {
        private readonly PhysicalFileProvider _files = new(root);

        public IDirectoryContents GetDirectoryContents(string subpath) => _files.GetDirectoryContents(subpath);

        public IFileInfo GetFileInfo(string subpath) => _files.GetFileInfo(subpath);

        public IChangeToken Watch(string filter) => NullChangeToken.Singleton;
    }
}
