using Appliance.Api.Audit;
using Appliance.Audit;
using Appliance.Audit.Chain;
using Appliance.Audit.Cluster;
using Appliance.Audit.Stores;

namespace Appliance.Host.Audit;

/// <summary>The node's chain and checkpoint key, and every chain of the store, for the /audit endpoints.</summary>
internal sealed class AuditReader(AuditLog log, CheckpointSigner signer, Appliance.Audit.Content.ContentVault vault) : IAuditReader
{
    public Appliance.Audit.Content.ContentVault Vault => vault;

    public string Node => log.Node;

    public IAuditStore Store => log.Store;

    public ClusterAuditView Chains { get; } = new(log.Store);

    public string PublicKeyPem { get; } = signer.PublicKeyPem();
}
