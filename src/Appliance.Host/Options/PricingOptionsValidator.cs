using Appliance.Audit.Pricing;
using Appliance.Api.Audit;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Options;

/// <summary>Names each invalid price at start: a report that silently priced a model at nothing would be believed.</summary>
internal sealed class PricingOptionsValidator : IValidateOptions<PricingOptions>
{
    public ValidateOptionsResult Validate(string? name, PricingOptions options) =>
        options.Validate().ToList() is { Count: > 0 } failures ? ValidateOptionsResult.Fail(failures) : ValidateOptionsResult.Success;
}
