using Appliance.Api.Models;
using Appliance.Host.Models;
using Appliance.Host.Options;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Extensions;

/// <summary>Declared models: options, validation, the catalog and the loader that fills it.</summary>
public static class ModelCatalogExtensions
{
    public static WebApplicationBuilder AddModelCatalog(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<ModelsOptions>()
            .Bind(builder.Configuration)
            .PostConfigure<IOptions<ApplianceOptions>>((models, appliance) =>
            {
                // Nothing declared: the embedded default serves a demo model generated on first start.
                if (models.Models.Count == 0 && appliance.Value.DemoModel)
                {
                    models.Models[DemoModel.Id] = new ModelOptions { Path = DemoModel.Ensure(appliance.Value.DataFolder), DefaultMaxTokens = 64 };
                }
            })
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<ModelsOptions>, ModelsOptionsValidator>();
        builder.Services.AddSingleton<ModelCatalog>();
        builder.Services.AddSingleton<IModelCatalog>(services => services.GetRequiredService<ModelCatalog>());
        builder.Services.AddSingleton<SettingsFiles>();
        builder.Services.AddSingleton<ModelManager>();
        builder.Services.AddSingleton<IModelAdministration>(services => services.GetRequiredService<ModelManager>());
        builder.Services.AddHostedService<ModelLoader>();
        return builder;
    }
}
