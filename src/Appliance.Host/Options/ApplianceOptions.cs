namespace Appliance.Host.Options;

/// <summary>Process-wide settings (configuration section "Appliance").</summary>
public sealed record ApplianceOptions
{
    public const string Section = "Appliance";

    /// <summary>Where the appliance keeps its data: the demo model, and later the audit store.</summary>
    public string DataFolder { get; init; } = "data";

    /// <summary>Serve the packaged all-MiniLM-L6-v2 sentence-embedding model on /v1/embeddings.</summary>
    public bool BuiltInEmbeddings { get; init; } = true;

    /// <summary>How long shutdown waits for running requests before it cancels them.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
