namespace Appliance.IntegrationTests.Deployment;

/// <summary>
/// The deployment tests run alone, after the others: they boot machines and build bundles that would take the two
/// cores from timing-sensitive tests running beside them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DeploymentCollection
{
    public const string Name = "deployment";
}
