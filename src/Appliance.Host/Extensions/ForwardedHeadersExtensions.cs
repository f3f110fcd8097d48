using System.Net;
using Appliance.Host.Options;
using Microsoft.AspNetCore.HttpOverrides;

namespace Appliance.Host.Extensions;

/// <summary>
/// Behind HAProxy every connection comes from the proxy: with Appliance:TrustedProxies set, the caller's address and
/// scheme are taken from the proxy's X-Forwarded-For / X-Forwarded-Proto (from those proxies only), so that audit
/// records, logs and refusals name the real client.
/// </summary>
public static class ForwardedHeadersExtensions
{
    public static WebApplicationBuilder AddTrustedProxies(this WebApplicationBuilder builder)
    {
        var entries = builder.Configuration.GetSection(ApplianceOptions.Section).Get<ApplianceOptions>()?.TrustedProxies ?? [];
        var networks = entries.Select(Parse).ToList();
        builder.Services.Configure<ForwardedHeadersOptions>(options =>
        {
            options.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto;
            // Only the configured proxies: the framework's default trusts loopback, which a node must not assume.
            options.KnownProxies.Clear();
            options.KnownIPNetworks.Clear();
            foreach (var network in networks)
            {
                options.KnownIPNetworks.Add(network);
            }
        });
        return builder;
    }

    public static WebApplication UseTrustedProxies(this WebApplication app)
    {
        if (app.Configuration.GetSection(ApplianceOptions.Section).Get<ApplianceOptions>()?.TrustedProxies is { Count: > 0 })
        {
            app.UseForwardedHeaders();
        }

        return app;
    }

    private static System.Net.IPNetwork Parse(string entry)
    {
        if (System.Net.IPNetwork.TryParse(entry, out var network))
        {
            return network;
        }

        if (IPAddress.TryParse(entry, out var address))
        {
            return new System.Net.IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
        }

        throw new SettingsException($"Appliance:TrustedProxies: '{entry}' is neither an IP address nor a network such as 10.0.0.0/24");
    }
}
