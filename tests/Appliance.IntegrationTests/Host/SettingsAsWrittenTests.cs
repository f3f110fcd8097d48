using Appliance.Host;
using Appliance.Host.Options;
using Appliance.Tests.Common;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Appliance.IntegrationTests.Host;

/// <summary>
/// Settings the binder would pass over in silence stop the start, each named by its full key: an administrator's typo
/// must not leave a default (an open model, no retention, a month-long timeout) in place unnoticed.
/// </summary>
public sealed class SettingsAsWrittenTests : IDisposable
{
    private static readonly string Appliance = Path.Combine(RepositoryPaths.Root, "appliance");
    private readonly TempFolder _root = new("appliance-written");

    [Theory]
    [InlineData("Identity:RequireHttpsMetdata", "false", "Identity:RequireHttpsMetdata is not a setting: did you mean Identity:RequireHttpsMetadata?")]
    [InlineData("Audit:Syslog:Taget", "udp://127.0.0.1:514", "Audit:Syslog:Taget is not a setting: did you mean Audit:Syslog:Target?")]
    [InlineData("Quotas:Teams:/research:TokensPerDya", "5", "Quotas:Teams:/research:TokensPerDya is not a setting: did you mean Quotas:Teams:/research:TokensPerDay?")]
    [InlineData("Limits:RequestTimeout", "30", "Limits:RequestTimeout is '30', which .NET reads as 30 days")]
    [InlineData("Audit:Retention", "90", "Audit:Retention is '90', which .NET reads as 90 days")]
    [InlineData("Appliance:TrustedProxies", "10.0.0.1", "Appliance:TrustedProxies must be a list")]
    [InlineData("Identity:Roles", "admin", "Identity:Roles is a group of settings")]
    [InlineData("Pool:TenantWeights:/research", "two", "Pool:TenantWeights:/research is 'two', which is not a number")]
    [InlineData("Identity:Audience:Name", "appliance-api", "Identity:Audience takes one value, not settings under it (Name)")]
    [InlineData("Tls:ClientCertificateAuthorty", "/etc/ca.crt", "did you mean Tls:ClientCertificateAuthority?")]
    public void A_setting_the_binder_would_ignore_or_misread_is_named_with_what_was_meant(string key, string value, string expected)
    {
        var failures = Validate(new Dictionary<string, string?> { [key] = value });
        Assert.Contains(failures, failure => failure.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Pool_settings_of_both_kinds_are_known_and_an_unknown_one_lists_the_section_s_settings()
    {
        Assert.Empty(Validate(new Dictionary<string, string?> { ["Pool:CpuSlots"] = "2", ["Pool:Placement"] = "pack", ["Pool:Include:0"] = "0" }));
        var failure = Assert.Single(Validate(new Dictionary<string, string?> { ["Pool:Gpus"] = "0" }));
        Assert.Contains("Pool:Gpus is not a setting (those of Pool are ", failure, StringComparison.Ordinal);
        Assert.Contains("CpuSlots", failure, StringComparison.Ordinal);
        Assert.Contains("UnloadGracePeriod", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void Written_durations_empty_values_and_keys_in_any_case_are_accepted()
    {
        Assert.Empty(Validate(new Dictionary<string, string?>
        {
            ["Limits:RequestTimeout"] = "00:00:30", ["audit:retention"] = "90.00:00:00", ["Audit:MaxSizeBytes"] = "", ["Identity:ROLES:admin"] = "ops",
            ["Quotas:Users:ada:TokensPerDay"] = "1000", ["Metrics:ManagementUrl"] = "http://127.0.0.1:9464", ["Appliance:DrainTimeout"] = "0",
            ["Appliance:TrustedProxies:lb1"] = "10.0.0.1", // the binder takes a list entry whatever its key
            ["POOL"] = "1", // a host's environment variable named like a section: no settings
        }));
    }

    [Fact]
    public void A_misspelled_section_in_a_settings_file_is_named_and_an_environment_variable_is_not()
    {
        var file = _root.Combine("node.json");
        File.WriteAllText(file, """{ "Identiy": { "Authority": "https://id.example.org/realms/appliance" }, "Logging": {}, "Custom": 1 }""");
        var configuration = new ConfigurationBuilder().AddJsonFile(file).AddInMemoryCollection(new Dictionary<string, string?> { ["Tmp"] = "/tmp" }).Build();

        var failure = Assert.Single(new WrittenSettingsValidator(configuration).Validate(null, new WrittenSettings()).Failures ?? []);
        Assert.Equal($"'Identiy' in {file} is not a section of the settings: did you mean Identity?", failure);
    }

    [Fact]
    public void The_shipped_production_settings_read_as_written()
    {
        var configuration = new ConfigurationBuilder().AddJsonFile(Path.Combine(Appliance, "appsettings.Production.json")).Build();
        Assert.True(new WrittenSettingsValidator(configuration).Validate(null, new WrittenSettings()).Succeeded);
    }

    [Fact]
    public async Task A_misspelled_setting_stops_the_start_naming_the_key()
    {
        // Before any section is bound: Limits and Appliance are read while the node is put together.
        var error = Assert.Throws<OptionsValidationException>(() => ApplianceApp.Create(["--urls=http://127.0.0.1:0", "--environment=Development",
            "--Appliance:BuiltInEmbeddings=false", $"--Appliance:DataFolder={_root.Combine("data")}", "--Audit:Retenion=90.00:00:00",
            "--Appliance:DrainTimeout=30", "--Limits:MaxTokens=lots"]));
        Assert.Contains("Audit:Retenion is not a setting: did you mean Audit:Retention?", error.Message, StringComparison.Ordinal);
        Assert.Contains("Appliance:DrainTimeout is '30', which .NET reads as 30 days", error.Message, StringComparison.Ordinal);
        Assert.Contains("Limits:MaxTokens is 'lots', which is not a whole number", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_process_lists_each_mistake_last_and_exits_78_which_the_unit_does_not_restart_unless_a_path_is_missing()
    {
        var host = Path.Combine(RepositoryPaths.Root, "src", "Appliance.Host", "bin", RepositoryPaths.Configuration, "net10.0", "Appliance.Host.dll");
        var (exit, output) = await ProcessRunner.RunAsync("dotnet", [host, "--urls=http://127.0.0.1:0", "--environment=Development",
            "--Appliance:BuiltInEmbeddings=false", $"--Appliance:DataFolder={_root.Combine("data")}", "--Audit:Retenion=90.00:00:00", "--Pool:UnloadGracePeriod=30"],
            TimeSpan.FromMinutes(1));

        Assert.True(exit == SettingsMistakes.ExitCode, output);
        var last = output.TrimEnd().Split('\n')[^3..];
        Assert.StartsWith("The appliance did not start: 2 setting(s) to correct", last[0], StringComparison.Ordinal);
        Assert.Contains(last, line => line.Contains("  - Audit:Retenion is not a setting: did you mean Audit:Retention?", StringComparison.Ordinal));
        Assert.Contains(last, line => line.Contains("  - Pool:UnloadGracePeriod is '30', which .NET reads as 30 days", StringComparison.Ordinal));
        // A value of the wrong type in a section read while the node is put together: said before the binder reads it.
        (exit, output) = await ProcessRunner.RunAsync("dotnet", [host, "--urls=http://127.0.0.1:0", "--environment=Development",
            $"--Appliance:DataFolder={_root.Combine("data")}", "--Limits:MaxTokens=lots"], TimeSpan.FromMinutes(1));
        Assert.True(exit == SettingsMistakes.ExitCode, output);
        Assert.Contains("  - Limits:MaxTokens is 'lots', which is not a whole number (no units or separators)", output, StringComparison.Ordinal);

        // A path that does not exist may be a disk mounted late: listed the same way, but systemd is to try again.
        (exit, output) = await ProcessRunner.RunAsync("dotnet", [host, "--urls=http://127.0.0.1:0", "--environment=Development",
            $"--Appliance:DataFolder={_root.Combine("data")}", $"--APPLIANCE_SETTINGS={_root.Combine("not-mounted.json")}"], TimeSpan.FromMinutes(1));
        Assert.True(exit == SettingsMistakes.RetryExitCode, output);
        Assert.Contains($"  - APPLIANCE_SETTINGS names the settings file {_root.Combine("not-mounted.json")}, which does not exist", output, StringComparison.Ordinal);

        foreach (var unit in new[] { Path.Combine(RepositoryPaths.Root, "appliance", "appliance.service"), Path.Combine(RepositoryPaths.Root, "ansible", "roles", "appliance", "templates", "appliance.service.j2") })
        {
            Assert.Contains($"RestartPreventExitStatus={SettingsMistakes.ExitCode}", await File.ReadAllTextAsync(unit), StringComparison.Ordinal);
        }
    }

    public void Dispose() => _root.Dispose();

    private static IReadOnlyList<string> Validate(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        return new WrittenSettingsValidator(configuration).Validate(null, new WrittenSettings()).Failures?.ToList() ?? [];
    }
}
