using Appliance.Api.Models;
using Appliance.Host.Options;
using Appliance.Identity;
using Microsoft.Extensions.Options;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Appliance.Host.Extensions;

/// <summary>Once every model is ready, tells a newcomer how to call the appliance: a curl line and the SDK base URL.</summary>
public static partial class StartupBannerExtensions
{
    public static WebApplication UseStartupBanner(this WebApplication app)
    {
        app.Lifetime.ApplicationStarted.Register(() => _ = Task.Run(async () =>
        {
            var catalog = app.Services.GetRequiredService<Models.ModelCatalog>();
            var stopping = app.Lifetime.ApplicationStopping;
            // Until the start-up loads are done (a node with no model at all has nothing to show, and stops waiting then).
            while (!stopping.IsCancellationRequested && (!catalog.StartupComplete || catalog.Entries.Any(e => e.State == ModelLoadState.Loading)))
            {
                await Task.Delay(200, CancellationToken.None);
            }

            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? ApplianceDefaultsExtensions.DefaultUrl;
            var model = catalog.Entries.FirstOrDefault(e => e.Served is not null)?.Id;
            if (model is not null && !stopping.IsCancellationRequested)
            {
                LogReady(app.Logger, $"{address}/v1", model, Curl(address, model, ExampleToken(app)));
            }
        }));
        return app;
    }

    private static string Curl(string address, string model, string token) =>
        $"curl -s {address}/v1/chat/completions -H \"Authorization: Bearer {token}\" -H 'Content-Type: application/json' -d '{{\"model\":\"{model}\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hello!\"}}]}}'";

    /// <summary>
    /// Under the development identity, a ready token (a "developer" with the chat role, valid eight hours), so that the
    /// line works as pasted; under Keycloak, a placeholder for the caller's own access token.
    /// </summary>
    private static string ExampleToken(WebApplication app) =>
        app.Services.GetService<DevelopmentIdentity>() is { } local
            ? local.Mint(new DevelopmentTokenRequest("developer", [app.Services.GetRequiredService<IOptions<IdentityOptions>>().Value.Roles.User],
                app.Services.GetRequiredService<IOptions<IdentityOptions>>().Value.Audience, TimeSpan.FromHours(8)), DateTimeOffset.UtcNow)
            : "$ACCESS_TOKEN";

    [LoggerMessage(EventId = 3100, Level = LogLevel.Information, Message = "Appliance ready. OpenAI SDK base URL: {BaseUrl} (model \"{Model}\"). Try:\n  {Curl}")]
    private static partial void LogReady(ILogger logger, string baseUrl, string model, string curl);
}
