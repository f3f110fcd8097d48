namespace Appliance.Host.Quotas;

/// <summary>Where the quota ledger reports a refusal (the metrics: quota_rejections_total by quota and scope).</summary>
internal interface IQuotaRefusals
{
    void QuotaRefused(string quota, string scope);
}
