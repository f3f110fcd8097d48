using System.Security.Claims;
using Appliance.Api.Models;
using Appliance.Identity;
using Appliance.Host.Options;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Identity;

/// <summary>
/// Per-model access from configuration: Models:&lt;id&gt;:AllowedRoles / AllowedGroups / Classification, as the
/// settings files say now (a model loaded or reloaded without a restart gets its rules at once).
/// </summary>
internal sealed class ModelAccess : IModelAccess
{
    private readonly LiveModelsView<Dictionary<string, ModelAccessRule>> _rules;
    private readonly ModelAccessRule _unlisted;
    private readonly Clearance _clearance;
    private readonly string _groupsClaim;
    private readonly ILogger<ModelAccess> _logger;

    public ModelAccess(IOptions<IdentityOptions> identity, IOptionsMonitor<ModelsOptions> models, ILogger<ModelAccess> logger)
    {
        var settings = identity.Value;
        _clearance = new Clearance(settings.ClassificationLevels, settings.ClearanceClaim, settings.DefaultClearance);
        _groupsClaim = settings.GroupsClaim;
        _logger = logger;
        HideForbiddenModels = settings.HideForbiddenModels;
        _rules = new(models, (declared, previous) =>
        {
            // A model taken out of the file keeps its last rules: it may still be loaded until the models role (or an
            // administrator) unloads it, and must not fall to the open rule of undeclared models meanwhile.
            var rules = previous is null ? new Dictionary<string, ModelAccessRule>(StringComparer.Ordinal) : new Dictionary<string, ModelAccessRule>(previous, StringComparer.Ordinal);
            foreach (var (id, model) in declared.Models)
            {
                rules[id] = new ModelAccessRule(model.AllowedRoles, model.AllowedGroups,
                    string.IsNullOrEmpty(model.Classification) ? settings.DefaultClassification : model.Classification);
            }

            return rules;
        });

        // Models not declared in Models (the built-in embedding model) are open to every chat user at the default label.
        _unlisted = new ModelAccessRule([], [], settings.DefaultClassification);
    }

    public bool HideForbiddenModels { get; }

    public bool MayUse(ClaimsPrincipal caller, string modelId, bool recordDenial, out string? denial)
    {
        var rule = _rules.Current.GetValueOrDefault(modelId, _unlisted);
        var refusal = rule.Check(caller, _clearance, _groupsClaim);
        denial = refusal switch
        {
            ModelAccessDenial.None => null,
            ModelAccessDenial.ClearanceTooLow => $"clearance {_clearance.DescribeCaller(caller)} below the model's label {rule.Classification}",
            _ => "not in the model's allowed roles or groups",
        };
        if (denial is not null && recordDenial)
        {
            IdentityLog.ModelRefused(_logger, caller.Identity?.Name, caller.FindFirst(ApplianceClaims.Client)?.Value, modelId, denial);
        }

        return refusal == ModelAccessDenial.None;
    }

    public string Classification(string modelId) => _rules.Current.GetValueOrDefault(modelId, _unlisted).Classification;
}
