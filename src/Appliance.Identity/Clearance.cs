using System.Security.Claims;

namespace Appliance.Identity;

/// <summary>
/// Data classification: each model carries a label, each caller a clearance from an ordered list of levels (lowest
/// first, for example public, internal, confidential, restricted). A caller may use a model whose label is at or
/// below its clearance.
/// </summary>
public sealed class Clearance
{
    private readonly IReadOnlyList<string> _levels;

    public Clearance(IReadOnlyList<string> levels, string claimType, string defaultClearance)
    {
        if (levels.Count == 0)
        {
            throw new ArgumentException("at least one classification level is needed", nameof(levels));
        }

        _levels = levels;
        ClaimType = claimType;
        DefaultClearance = Rank(defaultClearance) >= 0
            ? defaultClearance
            : throw new ArgumentException($"the default clearance '{defaultClearance}' is not one of the levels {string.Join(", ", levels)}", nameof(defaultClearance));
    }

    public string ClaimType { get; }

    /// <summary>The clearance of a caller whose token carries no clearance claim.</summary>
    public string DefaultClearance { get; }

    public IReadOnlyList<string> Levels => _levels;

    /// <summary>The position of a level (0 = lowest), or -1 when it is not a level.</summary>
    public int Rank(string? level) => level is null ? -1 : IndexOf(level);

    /// <summary>
    /// The caller's clearance: the highest valid level its clearance claims name, or the default when it has none. A
    /// claim naming an unknown level counts as the lowest level, never as the default: a typo must not raise anyone.
    /// </summary>
    public int CallerRank(ClaimsPrincipal caller)
    {
        var values = caller.FindAll(ClaimType).Select(c => c.Value).ToList();
        return values.Count == 0 ? Rank(DefaultClearance) : values.Select(v => Math.Max(0, Rank(v))).Max();
    }

    /// <summary>
    /// The caller's clearance and where it came from, for refusals: a realm whose mapper writes another claim than
    /// <see cref="ClaimType"/> shows as everyone holding the default, which the log must make plain.
    /// </summary>
    public string DescribeCaller(ClaimsPrincipal caller)
    {
        var values = caller.FindAll(ClaimType).Select(c => c.Value).ToList();
        if (values.Count == 0)
        {
            return $"{DefaultClearance} (Identity:DefaultClearance: the token carries no '{ClaimType}' claim)";
        }

        var level = _levels[CallerRank(caller)];
        var unknown = values.Where(v => Rank(v) < 0).ToList();
        var named = string.Join(", ", unknown.Select(v => $"'{v}'"));
        return unknown.Count == 0 ? level
            : unknown.Count == values.Count ? $"{level} (its '{ClaimType}' claim names {named}, which is no level: counted as the lowest)"
            : $"{level} (its '{ClaimType}' claim also names {named}, which is no level)";
    }

    /// <summary>Whether the caller may see data of this label; a label that is no level admits nobody (fail closed).</summary>
    public bool Permits(ClaimsPrincipal caller, string classification) => Rank(classification) is var label and >= 0 && CallerRank(caller) >= label;

    private int IndexOf(string level)
    {
        for (var i = 0; i < _levels.Count; i++)
        {
            if (string.Equals(_levels[i], level, StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }

        return -1;
    }
}
