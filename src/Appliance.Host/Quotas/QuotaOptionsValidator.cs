using Microsoft.Extensions.Options;

namespace Appliance.Host.Quotas;

/// <summary>Names each invalid quota setting at start.</summary>
internal sealed class QuotaOptionsValidator(IOptions<Options.AuditOptions> audit) : IValidateOptions<QuotaOptions>
{
    public ValidateOptionsResult Validate(string? name, QuotaOptions options) =>
        options.Validate().Concat(Audit.CallerTeam.Unmatched(options.Teams.Keys, "Quotas:Teams", audit.Value.TeamPrefix)).ToList() is { Count: > 0 } failures
            ? ValidateOptionsResult.Fail(failures)
            : ValidateOptionsResult.Success;
}
