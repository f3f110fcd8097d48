using Appliance.Api.Guardrails;
using Appliance.Host.Metrics;
using Appliance.Host.Options;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Extensions;

/// <summary>Guardrails (configuration "Guardrails"): rules checked at start, compiled once, counted in the metrics.</summary>
public static partial class GuardrailExtensions
{
    public static WebApplicationBuilder AddApplianceGuardrails(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<GuardrailOptions>().Bind(builder.Configuration.GetSection(GuardrailOptions.Section)).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<GuardrailOptions>, GuardrailOptionsValidator>();
        builder.Services.AddSingleton<GuardrailMetrics>();
        builder.Services.AddSingleton(services =>
        {
            var catalog = services.GetRequiredService<Appliance.Api.Models.IModelCatalog>();
            return new GuardrailSet(services.GetRequiredService<IOptions<GuardrailOptions>>(), services.GetRequiredService<GuardrailMetrics>(),
                services.GetRequiredService<IOptions<IdentityOptions>>().Value.GroupsClaim, id => catalog.Find(id)?.Aliases ?? []);
        });
        return builder;
    }

    /// <summary>
    /// Names, once at start, a rule's model that is no id or alias this node declares: a misspelt name leaves that model
    /// unguarded (GET /admin/guardrails lists them too).
    /// </summary>
    public static WebApplication WarnOfUnguardedModels(this WebApplication app)
    {
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var declared = app.Services.GetRequiredService<IOptionsMonitor<ModelsOptions>>().CurrentValue.Models;
            var ids = new HashSet<string>(declared.Keys, StringComparer.OrdinalIgnoreCase);
            if (app.Services.GetRequiredService<IOptions<ApplianceOptions>>().Value.BuiltInEmbeddings)
            {
                ids.Add(Appliance.Runtime.Onnx.Embeddings.MiniLmPackage.ModelId);
            }

            ids.UnionWith(declared.Values.SelectMany(m => m.Aliases));
            foreach (var (rule, model) in app.Services.GetRequiredService<GuardrailSet>().NamedModels.Where(n => !ids.Contains(n.Model)))
            {
                LogRuleForNoModel(app.Logger, rule, model);
            }
        });
        return app;
    }

    [LoggerMessage(EventId = 4064, Level = LogLevel.Warning,
        Message = "Guardrail '{Rule}' names model '{Model}', which is no model id or alias this node declares (a misspelt name, or a model not yet added): the rule guards nothing under that name")]
    private static partial void LogRuleForNoModel(ILogger logger, string rule, string model);
}
