using System.Security.Claims;

namespace Appliance.Api.Models;

/// <summary>Decides which models a caller may use (roles, groups, clearance); the host implements it from configuration.</summary>
public interface IModelAccess
{
    /// <summary>Answer 404 instead of 403 for a model the caller may not use, so that model names do not leak.</summary>
    bool HideForbiddenModels { get; }

    /// <summary>
    /// Whether the caller may use the model; a refusal is logged when <paramref name="recordDenial"/> is set, and its
    /// reason returned for the audit record.
    /// </summary>
    bool MayUse(ClaimsPrincipal caller, string modelId, bool recordDenial, out string? denial);

    /// <summary>The model's data-classification label.</summary>
    string Classification(string modelId);
}
