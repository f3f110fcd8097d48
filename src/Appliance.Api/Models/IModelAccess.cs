using System.Security.Claims;

namespace Appliance.Api.Models;

/// <summary>Decides which models a caller may use (roles, groups, clearance); the host implements it from configuration.</summary>
public interface IModelAccess
{
    /// <summary>Answer 404 instead of 403 for a model the caller may not use, so that model names do not leak.</summary>
    bool HideForbiddenModels { get; }

    /// <summary>Whether the caller may use the model; a refusal is recorded when <paramref name="recordDenial"/> is set.</summary>
    bool MayUse(ClaimsPrincipal caller, string modelId, bool recordDenial);
}
