namespace Appliance.Api.Admin;

/// <summary>What administrators may issue as API keys; the host fills it from its identity settings.</summary>
public sealed record ApiKeyIssuing(
    bool Enabled,
    IReadOnlyList<string> ForbiddenRoles,
    IReadOnlyList<string> ClearanceLevels,
    int DefaultLifetimeDays,
    int MaxLifetimeDays);
