namespace Appliance.Api.Guardrails;

/// <summary>Every rule's matches in one text, in order and without overlaps.</summary>
internal static class MatchResolution
{
    /// <summary>
    /// The matches of <paramref name="rules"/> in <paramref name="text"/> from <paramref name="startAt"/> on, first to
    /// last, none overlapping. A mask that overlaps a block gives way to it, and the block then starts where the mask
    /// did (masking must not hide what is refused, nor let the start of what it would have masked through); masks that
    /// overlap are merged into the first one; otherwise the one starting first is kept (at the same start a block).
    /// </summary>
    public static List<RuleMatch> Resolve(IReadOnlyList<GuardrailRule> rules, string text, int startAt = 0)
    {
        var all = rules.SelectMany(rule => rule.Matches(text, startAt)).ToList();
        var blocks = all.Where(m => m.Rule.Action == GuardrailAction.Block).ToList();
        static bool Overlap(RuleMatch a, RuleMatch b) => a.Start < b.End && b.Start < a.End;
        var found = all.Where(m => m.Rule.Action == GuardrailAction.Mask && !blocks.Any(b => Overlap(b, m)))
            .Concat(blocks.Select(b => all.Where(m => m.Rule.Action == GuardrailAction.Mask && Overlap(b, m)).Select(m => m.Start).Append(b.Start).Min() is var start
                ? b with { Start = start, Length = b.End - start } : b))
            .OrderBy(m => m.Start).ThenBy(m => m.Rule.Action == GuardrailAction.Block ? 0 : 1).ThenByDescending(m => m.Length);
        var kept = new List<RuleMatch>();
        foreach (var match in found)
        {
            if (kept.Count == 0 || match.Start >= kept[^1].End)
            {
                kept.Add(match);
            }
            else if (kept[^1].Rule.Action == GuardrailAction.Mask && match.Rule.Action == GuardrailAction.Mask && match.End > kept[^1].End)
            {
                kept[^1] = kept[^1] with { Length = match.End - kept[^1].Start }; // one mask over both: no tail sent
            }
        }

        return kept;
    }
}
