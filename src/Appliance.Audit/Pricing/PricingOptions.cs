namespace Appliance.Audit.Pricing;

/// <summary>One rate of a model: what a million prompt and completion tokens cost, from a UTC day on (or always).</summary>
public record ModelRate
{
    /// <summary>The first UTC day the rate applies to; null: every day before the next rate's.</summary>
    public DateOnly? Since { get; init; }

    public decimal? InputPerMillion { get; init; }

    public decimal? OutputPerMillion { get; init; }
}

/// <summary>A model's current rate and, when it changed, the rates it had before (each with its own Since).</summary>
public sealed record ModelPrice : ModelRate
{
    public List<ModelRate> Earlier { get; init; } = [];

    /// <summary>Every rate, the oldest first (a rate without Since is the oldest).</summary>
    public IEnumerable<ModelRate> Rates() => Earlier.Append(this).OrderBy(r => r.Since ?? DateOnly.MinValue);
}

/// <summary>
/// Internal prices for chargeback (configuration "Pricing"): the usage reports add what each team, user, client or model
/// cost. Rates are per model and dated, so a report over a period that spans a price change counts each day at the rate
/// it had. Models removed from the node keep their prices here for the reports of the days they served.
/// </summary>
public sealed record PricingOptions
{
    public const string Section = "Pricing";

    /// <summary>The unit the rates are in: a currency code (EUR) or an internal unit (credits).</summary>
    public string Currency { get; init; } = string.Empty;

    /// <summary>Prices by model id.</summary>
    public Dictionary<string, ModelPrice> Models { get; init; } = [];

    public IEnumerable<string> Validate()
    {
        if (Models.Count > 0 && string.IsNullOrWhiteSpace(Currency))
        {
            yield return "Pricing:Currency must say what the rates are in (EUR, USD, credits) when Pricing:Models sets prices";
        }

        if (Currency.Length > 16)
        {
            yield return $"Pricing:Currency '{Currency}' is longer than 16 characters: name a currency code or a short unit";
        }

        foreach (var (model, price) in Models)
        {
            var key = $"Pricing:Models:{model}";
            foreach (var problem in Problems(key, price).Concat(price.Earlier.SelectMany((rate, i) => Problems($"{key}:Earlier:{i}", rate))))
            {
                yield return problem;
            }

            if (price.Earlier.Count > 0 && price.Since is null)
            {
                yield return $"{key}:Since must say from which day the current rate applies, since {key}:Earlier has rates before it";
            }
            else if (price.Earlier.FirstOrDefault(r => r.Since >= price.Since) is { } later)
            {
                yield return $"{key}:Earlier has a rate since {later.Since:yyyy-MM-dd}, not before the current rate's Since ({price.Since:yyyy-MM-dd})";
            }

            if (price.Earlier.Count(r => r.Since is null) > 1)
            {
                yield return $"{key}:Earlier has more than one rate without Since: only the oldest may leave it out";
            }
            else if (price.Earlier.Where(r => r.Since is not null).GroupBy(r => r.Since).FirstOrDefault(g => g.Count() > 1) is { } twice)
            {
                yield return $"{key}:Earlier has two rates since {twice.Key:yyyy-MM-dd}";
            }
        }
    }

    private static IEnumerable<string> Problems(string key, ModelRate rate)
    {
        foreach (var (name, value) in new[] { ("InputPerMillion", rate.InputPerMillion), ("OutputPerMillion", rate.OutputPerMillion) })
        {
            if (value is null)
            {
                yield return $"{key}:{name} must be set (0 when those tokens are free)";
            }
            else if (value < 0)
            {
                yield return $"{key}:{name} must not be negative";
            }
        }
    }
}
