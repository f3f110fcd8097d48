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
            new GuardrailSet(services.GetRequiredService<IOptions<GuardrailOptions>>(), services.GetRequiredService<GuardrailMetrics>(),
                services.GetRequiredService<IOptions<IdentityOptions>>().Value.GroupsClaim));
        return builder;
    }

    /// <summary>
    /// Names, once at start, a rule's model that this node does not declare: a misspelt id leaves that model
    /// unguarded, and an alias never matches (rules name model ids, as requests are resolved to them).
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

            foreach (var (rule, model) in app.Services.GetRequiredService<GuardrailSet>().NamedModels.Where(n => !ids.Contains(n.Model)))
            {
                var owner = declared.FirstOrDefault(m => m.Value.Aliases.Contains(model, StringComparer.OrdinalIgnoreCase)).Key;
                LogRuleForNoModel(app.Logger, rule, model, owner is null ? "no model this node declares (a misspelt id, or one not yet added)" : $"an alias of {owner}: name the id, or the rule does not apply");
            }
        });
        return app;
    }

    [LoggerMessage(EventId = 4064, Level = LogLevel.Warning, Message = "Guardrail '{Rule}' names model '{Model}', which is {What}")]
    private static partial void LogRuleForNoModel(ILogger logger, string rule, string model, string what);
}
