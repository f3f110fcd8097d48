namespace Appliance.Api.Guardrails;

/// <summary>Every rule's matches in one text, in order and without overlaps.</summary>
internal static class MatchResolution
{
    /// <summary>
    /// The matches of <paramref name="rules"/> in <paramref name="text"/> from <paramref name="startAt"/> on, first to
    /// last. A mask that overlaps a block gives way to it (masking must not hide what is refused); otherwise, where two
    /// overlap, the one starting first is kept (at the same start a block, then the longer).
    /// </summary>
    public static List<RuleMatch> Resolve(IReadOnlyList<GuardrailRule> rules, string text, int startAt = 0)
    {
        var all = rules.SelectMany(rule => rule.Matches(text, startAt)).ToList();
        var blocks = all.Where(m => m.Rule.Action == GuardrailAction.Block).ToList();
        var found = all.Where(m => m.Rule.Action == GuardrailAction.Block || !blocks.Any(b => b.Start < m.End && m.Start < b.End))
            .OrderBy(m => m.Start).ThenBy(m => m.Rule.Action == GuardrailAction.Block ? 0 : 1).ThenByDescending(m => m.Length);
        var kept = new List<RuleMatch>();
        var end = 0;
        foreach (var match in found)
        {
            if (match.Start >= end)
            {
                kept.Add(match);
                end = match.End;
            }
        }

        return kept;
    }
}
