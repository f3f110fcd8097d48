using System.Net;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Options;

/// <summary>
/// Checks identity settings at start, naming each bad key. Without an authority only the Development environment may
/// run, and only listening on loopback: the development identity's key sits in the data folder, readable by anyone who
/// can read that folder.
/// </summary>
internal sealed class IdentityOptionsValidator(IHostEnvironment environment, IConfiguration configuration)
    : IValidateOptions<IdentityOptions>
{
    public ValidateOptionsResult Validate(string? name, IdentityOptions options)
    {
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.Authority))
        {
            if (!environment.IsDevelopment())
            {
                failures.Add($"Identity:Authority is required in the {environment.EnvironmentName} environment: set it to your Keycloak realm "
                    + "(https://kc.example/realms/<realm>). The local development identity runs only with --environment Development.");
            }
            else if (ListeningAddresses(configuration).FirstOrDefault(address => !IsLoopback(address)) is { } open)
            {
                failures.Add($"the development identity (no Identity:Authority) serves loopback only, but the appliance would listen on {open}.");
            }
        }
        else if (!Uri.TryCreate(options.Authority, UriKind.Absolute, out var authority) || authority.Scheme is not ("https" or "http"))
        {
            failures.Add($"Identity:Authority '{options.Authority}' must be an absolute URL such as https://kc.example/realms/appliance.");
        }
        else if (authority.Scheme == "http" && options.RequireHttpsMetadata)
        {
            failures.Add("Identity:Authority uses http: set Identity:RequireHttpsMetadata=false, for a loopback test realm only.");
        }

        Require(failures, "Identity:ApiKeys:MaxLifetimeDays", options.ApiKeys.MaxLifetimeDays is >= 1 and <= 3650, "must be between 1 and 3650");
        Require(failures, "Identity:ApiKeys:DefaultLifetimeDays", options.ApiKeys.DefaultLifetimeDays >= 1 && options.ApiKeys.DefaultLifetimeDays <= options.ApiKeys.MaxLifetimeDays,
            "must be between 1 and Identity:ApiKeys:MaxLifetimeDays");
        Require(failures, "Identity:ApiKeys:RefreshInterval", options.ApiKeys.RefreshInterval >= TimeSpan.FromMilliseconds(100) && options.ApiKeys.RefreshInterval <= TimeSpan.FromMinutes(10),
            "must be between 00:00:00.1 and 00:10:00");
        Require(failures, "Identity:Audience", !string.IsNullOrWhiteSpace(options.Audience), "is required");
        var ownerCheck = options.ApiKeys.OwnerCheck;
        if (ownerCheck.ClientId.Length > 0)
        {
            Require(failures, "Identity:ApiKeys:OwnerCheck:ClientSecret", ownerCheck.ClientSecret.Length > 0, "is required with a ClientId");
            Require(failures, "Identity:ApiKeys:OwnerCheck:Interval", ownerCheck.Interval >= TimeSpan.FromSeconds(1) && ownerCheck.Interval <= TimeSpan.FromDays(1),
                "must be between 00:00:01 and 1.00:00:00");
            Require(failures, "Identity:ApiKeys:OwnerCheck:MaxStaleness", ownerCheck.MaxStaleness >= ownerCheck.Interval * 2,
                "must be at least twice Identity:ApiKeys:OwnerCheck:Interval");
            Require(failures, "Identity:ApiKeys:OwnerCheck:ClientId", options.Authority.Contains("/realms/", StringComparison.Ordinal),
                "needs Identity:Authority to be a Keycloak realm (…/realms/<realm>)");
        }
        Require(failures, "Identity:AllowedClients", options.AllowedClients.All(c => !string.IsNullOrWhiteSpace(c) && c.Trim() == c),
            "must list Keycloak client ids (no empty entries, no surrounding spaces)");
        Require(failures, "Identity:ClockSkew", options.ClockSkew >= TimeSpan.Zero && options.ClockSkew <= TimeSpan.FromMinutes(5), "must be between 0 and 5 minutes");
        Require(failures, "Identity:JwksRefreshInterval", options.JwksRefreshInterval >= TimeSpan.FromSeconds(1), "must be at least one second");
        Require(failures, "Identity:MetadataRefreshInterval", options.MetadataRefreshInterval >= TimeSpan.FromMinutes(1), "must be at least one minute");
        Require(failures, "Identity:ClassificationLevels", options.ClassificationLevels.Count > 0 && options.ClassificationLevels.All(l => !string.IsNullOrWhiteSpace(l)),
            "must list at least one level, lowest first");
        Require(failures, "Identity:DefaultClearance", IsLevel(options, options.DefaultClearance), $"must be one of {string.Join(", ", options.ClassificationLevels)}");
        Require(failures, "Identity:DefaultClassification", IsLevel(options, options.DefaultClassification), $"must be one of {string.Join(", ", options.ClassificationLevels)}");
        // A model's Classification is checked by ModelsOptionsValidator, also when the models file is read again.
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static bool IsLevel(IdentityOptions options, string level) =>
        options.ClassificationLevels.Contains(level, StringComparer.OrdinalIgnoreCase);

    private static IEnumerable<string> ListeningAddresses(IConfiguration configuration)
    {
        var urls = configuration["urls"];
        var configured = string.IsNullOrEmpty(urls) ? [] : urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var endpoints = configuration.GetSection("Kestrel:Endpoints").GetChildren().Select(e => e["Url"]).OfType<string>();
        return configured.Concat(endpoints);
    }

    private static bool IsLoopback(string url)
    {
        // A Unix socket is reached from this machine only, as loopback is; Kestrel reads "unix:/" (exactly) after the
        // scheme as one, while "http://unix:8080" is a host name, which it binds on every interface.
        if (url.Split("://", 2) is [_, var rest] && rest.StartsWith("unix:/", StringComparison.Ordinal))
        {
            return true;
        }

        var host = url.Split("://", 2).Last().Split('/')[0];
        host = host.StartsWith('[') ? host[1..host.IndexOf(']', StringComparison.Ordinal)] : host.Split(':')[0];
        return host == "localhost" || (IPAddress.TryParse(host, out var address) && IPAddress.IsLoopback(address));
    }

    private static void Require(List<string> failures, string key, bool valid, string rule)
    {
        if (!valid)
        {
            failures.Add($"{key} {rule}");
        }
    }
}
