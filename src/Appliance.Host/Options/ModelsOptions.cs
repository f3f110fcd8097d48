namespace Appliance.Host.Options;

/// <summary>Every declared model by id (configuration section "Models"). Empty means: serve the demo model.</summary>
public sealed record ModelsOptions
{
    public const string Section = "Models";

    public Dictionary<string, ModelOptions> Models { get; init; } = [];
}
