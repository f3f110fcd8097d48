using Appliance.Api.OpenAi;
using Appliance.Host.Extensions;

namespace Appliance.Host;

/// <summary>The appliance's composition, read top to bottom: what runs and what is served.</summary>
public static class ApplianceApp
{
    public static WebApplication Create(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.AddApplianceDefaults();
        builder.AddModelCatalog();
        builder.Services.AddApplianceHealthChecks();

        var app = builder.Build();
        app.MapApplianceHealth();
        app.MapOpenAiApi();
        app.UseStartupBanner();
        return app;
    }
}
