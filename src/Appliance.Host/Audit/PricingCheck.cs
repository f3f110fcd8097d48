using Appliance.Audit.Pricing;
using Appliance.Api.Audit;
using Appliance.Host.Options;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Audit;

/// <summary>
/// Names, once at start, the prices that will price nothing on this node and the models it serves without one: the
/// reports list unpriced models, but the cost metric (and so a budget alert) silently leaves their requests out.
/// </summary>
internal static partial class PricingCheck
{
    public static void WarnAtStart(WebApplication app) => app.Lifetime.ApplicationStarted.Register(() =>
    {
        var prices = app.Services.GetRequiredService<IOptions<PricingOptions>>().Value;
        if (prices.Models.Count == 0)
        {
            return;
        }

        var declared = app.Services.GetRequiredService<IOptionsMonitor<ModelsOptions>>().CurrentValue.Models;
        var ids = new HashSet<string>(declared.Keys, StringComparer.OrdinalIgnoreCase);
        foreach (var priced in prices.Models.Keys.Where(k => !ids.Contains(k)))
        {
            // Usage is recorded under the model's id, never an alias; a retired model's price is kept on purpose.
            var owner = declared.FirstOrDefault(m => m.Value.Aliases.Contains(priced, StringComparer.OrdinalIgnoreCase)).Key;
            LogPriceForNoModel(app.Logger, priced, owner is null ? "no model this node serves (a retired one, or a misspelt id)" : $"an alias of {owner}: prices go under the id");
        }

        foreach (var unpriced in declared.Keys.Where(id => !prices.Models.Keys.Contains(id, StringComparer.OrdinalIgnoreCase)))
        {
            LogModelWithoutPrice(app.Logger, unpriced);
        }
    });

    [LoggerMessage(EventId = 4060, Level = LogLevel.Warning, Message = "Pricing:Models:{Model} is {What}")]
    private static partial void LogPriceForNoModel(ILogger logger, string model, string what);

    [LoggerMessage(EventId = 4061, Level = LogLevel.Warning,
        Message = "Model {Model} has no price (Pricing:Models): its tokens are in no cost of the usage reports, nor in appliance_cost_total")]
    private static partial void LogModelWithoutPrice(ILogger logger, string model);
}
