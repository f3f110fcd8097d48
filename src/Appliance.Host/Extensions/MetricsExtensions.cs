using Appliance.Host.Metrics;
using Prometheus;

namespace Appliance.Host.Extensions;

/// <summary>
/// /metrics in Prometheus text format: for administrators (policy admin; Prometheus can fetch a Keycloak token itself)
/// or, with Metrics:ManagementUrl set (e.g. http://10.0.0.5:9464 on a management network), only on that listener and
/// without a token, as Prometheus usually scrapes.
/// </summary>
public static class MetricsExtensions
{
    private const string ManagementUrlKey = "Metrics:ManagementUrl";

    public static WebApplicationBuilder AddApplianceMetrics(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ApplianceMetrics>();
        builder.Services.AddSingleton<Quotas.IQuotaRefusals>(services => services.GetRequiredService<ApplianceMetrics>());
        if (ManagementUri(builder.Configuration) is { } management)
        {
            // Requests are told apart by the port they arrive on: the API on that port would answer 404 to everything
            // (and serve the metrics without a token) while the health checks still said ready.
            var apiUrls = builder.Configuration.GetSection("Kestrel:Endpoints").GetChildren().Select(e => e["Url"]).OfType<string>()
                .Concat((builder.Configuration["urls"] ?? string.Empty).Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            if (apiUrls.FirstOrDefault(url => PortOf(url) == management.Port) is { } shared)
            {
                throw new SettingsException($"{ManagementUrlKey} must use a port of its own: {management.Port} is also the API's ({shared})");
            }

            if (builder.Configuration.GetSection("Kestrel:Endpoints").Exists())
            {
                // Configured endpoints (a cluster node's HTTPS and loopback listeners) override UseUrls: the management
                // listener is added beside them in code, plain HTTP.
                builder.WebHost.ConfigureKestrel(kestrel => Listen(kestrel, management));
            }
            else
            {
                var urls = (builder.Configuration["urls"] ?? "http://localhost:5000").Split(';', StringSplitOptions.RemoveEmptyEntries);
                builder.WebHost.UseUrls([.. urls, management.GetLeftPart(UriPartial.Authority)]);
            }
        }

        return builder;
    }

    private static void Listen(Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions kestrel, Uri management)
    {
        if (management.IsLoopback && !System.Net.IPAddress.TryParse(management.Host.Trim('[', ']'), out _))
        {
            kestrel.ListenLocalhost(management.Port);
        }
        else if (System.Net.IPAddress.TryParse(management.Host.Trim('[', ']'), out var address))
        {
            kestrel.Listen(address, management.Port);
        }
        else
        {
            kestrel.ListenAnyIP(management.Port);
        }
    }

    public static WebApplication UseApplianceMetrics(this WebApplication app)
    {
        // prometheus-net starts listening to .NET meters at its first collection; one collection here, at start, so
        // that counts from before the first scrape are not lost.
        app.Services.GetRequiredService<ApplianceMetrics>();
        Prometheus.Metrics.DefaultRegistry.CollectAndExportAsTextAsync(Stream.Null).GetAwaiter().GetResult();
        if (ManagementUri(app.Configuration) is { } management)
        {
            // The connection's local port decides, not the Host header (which a caller on the API port could forge): the
            // management listener serves /metrics and health only, the API listeners never serve /metrics.
            app.Use(async (http, next) =>
            {
                var onManagement = http.Connection.LocalPort == management.Port;
                var path = http.Request.Path;
                if (onManagement != path.StartsWithSegments("/metrics") && !(onManagement && path.StartsWithSegments("/health")))
                {
                    http.Response.StatusCode = StatusCodes.Status404NotFound;
                    return;
                }

                await next(http);
            });
        }

        app.UseMiddleware<MetricsMiddleware>();
        return app;
    }

    public static WebApplication MapApplianceMetrics(this WebApplication app, string policy)
    {
        var metrics = app.MapMetrics("/metrics");
        _ = ManagementUri(app.Configuration) is null ? metrics.RequireAuthorization(policy) : metrics.AllowAnonymous(); // the port filter guards it
        return app;
    }

    /// <summary>The port of a listening URL as Kestrel reads it (hosts such as + and * included), or null.</summary>
    private static int? PortOf(string url)
    {
        var match = System.Text.RegularExpressions.Regex.Match(url, @"^(?<scheme>[A-Za-z]+)://(?<host>\[[^\]]*\]|[^/:]*)(:(?<port>\d+))?");
        return !match.Success ? null
            : match.Groups["port"].Success ? int.Parse(match.Groups["port"].Value, System.Globalization.CultureInfo.InvariantCulture)
            : match.Groups["scheme"].Value.Equals("https", StringComparison.OrdinalIgnoreCase) ? 443 : 80;
    }

    private static Uri? ManagementUri(IConfiguration configuration)
    {
        if (configuration[ManagementUrlKey] is not { Length: > 0 } text)
        {
            return null;
        }

        return Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttp && uri.Port > 0 && uri.AbsolutePath == "/"
            ? uri
            : throw new SettingsException($"{ManagementUrlKey} must be an http URL with a host and port and no path, e.g. http://127.0.0.1:9464; got '{text}'");
    }
}
