using Microsoft.Extensions.Options;

namespace Appliance.Host.Options;

/// <summary>Names each invalid Pool setting at start.</summary>
public sealed class PoolOptionsValidator(IOptions<AuditOptions> audit) : IValidateOptions<PoolOptions>
{
    public ValidateOptionsResult Validate(string? name, PoolOptions options) =>
        options.Validate().Concat(Audit.CallerTeam.Unmatched(options.TenantWeights.Keys, "Pool:TenantWeights", audit.Value.TeamPrefix)).ToList() is { Count: > 0 } failures
            ? ValidateOptionsResult.Fail(failures)
            : ValidateOptionsResult.Success;
}
