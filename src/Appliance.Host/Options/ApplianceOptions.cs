namespace Appliance.Host.Options;

/// <summary>Process-wide settings (configuration section "Appliance").</summary>
public sealed record ApplianceOptions
{
    public const string Section = "Appliance";

    /// <summary>Where the appliance keeps its data: the demo model, and later the audit store.</summary>
    public string DataFolder { get; init; } = "data";

    /// <summary>
    /// With no models declared, serve a demo model with random weights (the embedded defaults' first start). Off on an
    /// installed node: its users would get noise from a model that looks served, and a node without models says so.
    /// </summary>
    public bool DemoModel { get; init; } = true;

    /// <summary>Serve the packaged all-MiniLM-L6-v2 sentence-embedding model on /v1/embeddings.</summary>
    public bool BuiltInEmbeddings { get; init; } = true;

    /// <summary>How long shutdown waits for running requests before it cancels them.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Load balancers (addresses or CIDR networks) whose X-Forwarded-For and X-Forwarded-Proto are believed: the audit
    /// log then records the caller's address instead of the proxy's. Empty: the headers are ignored.
    /// </summary>
    public IReadOnlyList<string> TrustedProxies { get; init; } = [];

    /// <summary>Web origins (https://chat.example.org) whose pages may call /v1 from the browser (CORS). Empty: none.</summary>
    public IReadOnlyList<string> CorsOrigins { get; init; } = [];
}
