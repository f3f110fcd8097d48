using Appliance.Api.Audit;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace Appliance.Api.Guardrails;

/// <summary>
/// The node's guardrail rules, compiled once; which of them apply is worked out per request (a few rules against the
/// model's id and current aliases, and the caller's groups).
/// </summary>
public sealed class GuardrailSet
{
    private readonly IReadOnlyList<GuardrailRule> _rules;
    private readonly IReadOnlyList<GuardrailRuleOptions> _written;
    private readonly IGuardrailObserver? _observer;
    private readonly string _groupsClaim;
    private readonly Func<string, IReadOnlyList<string>> _aliasesOf;

    /// <param name="groupsClaim">The token claim that lists the caller's groups (Identity:GroupsClaim).</param>
    /// <param name="aliasesOf">A model's aliases as declared now (a rule may name one; they change with a reload).</param>
    public GuardrailSet(IOptions<GuardrailOptions> options, IGuardrailObserver? observer = null, string groupsClaim = "groups", Func<string, IReadOnlyList<string>>? aliasesOf = null)
    {
        _groupsClaim = groupsClaim;
        _aliasesOf = aliasesOf ?? (_ => []);
        // The options were validated at start (GuardrailOptionsValidator): a problem here is a bug, not a setting.
        _rules = [.. options.Value.Rules.Select((rule, i) => GuardrailRule.Compile(rule, i) switch
        {
            { Rule: { } compiled } => compiled,
            var (_, problem) => throw new InvalidOperationException(problem),
        })];
        _written = options.Value.Rules;
        _observer = observer;
        Fingerprint = FingerprintOf(_written, groupsClaim);
    }

    /// <summary>A digest of the rules as written, to compare the nodes of a cluster (each must have the same).</summary>
    public string Fingerprint { get; }

    /// <summary>The rules as written, each with how far it holds a streamed answer back.</summary>
    public IEnumerable<object> Describe() => _written.Zip(_rules, (written, rule) => new
    {
        name = written.Name,
        detector = written.Detector,
        pattern = written.Pattern,
        words = written.Words.Count == 0 ? null : written.Words,
        action = written.Action.ToString().ToLowerInvariant(),
        applies = written.Applies.ToString().ToLowerInvariant(),
        models = written.Models.Count == 0 ? null : written.Models,
        exemptGroups = written.ExemptGroups.Count == 0 ? null : written.ExemptGroups,
        mask = rule.Mask,
        maxLength = rule.MaxLength,
        heldBack = !rule.Output ? null : rule.SpansWhitespace ? $"{rule.MaxLength} character{(rule.MaxLength == 1 ? string.Empty : "s")}" : "the last word",
    });

    /// <summary>The names of the rules that screen a model's input and its output.</summary>
    public (IReadOnlyList<string> Input, IReadOnlyList<string> Output) RulesFor(string modelId)
    {
        var (input, output) = Lookup(modelId);
        return ([.. input.Select(r => r.Name)], [.. output.Select(r => r.Name)]);
    }

    /// <summary>Over the rules and the claim exemptions are read from (another claim, other exemptions).</summary>
    private static string FingerprintOf(IReadOnlyList<GuardrailRuleOptions> rules, string groupsClaim)
    {
        var canonical = groupsClaim + "\n" + System.Text.Json.JsonSerializer.Serialize(rules.Select(r => new object?[]
        {
            r.Name, r.Detector, r.Pattern, r.Words, r.Action.ToString(), r.Applies.ToString(),
            r.Models.Order(StringComparer.OrdinalIgnoreCase).ToList(), r.Mask, r.MaxLength,
            r.ExemptGroups.Select(g => g.TrimStart('/')).Order(StringComparer.Ordinal).ToList(),
        }));
        return "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(canonical)));
    }

    /// <summary>Model ids the rules name (to warn of one no model has).</summary>
    public IEnumerable<(string Rule, string Model)> NamedModels => _rules.SelectMany(r => r.Models.Select(m => (r.Name, m)));

    /// <param name="aliases">The aliases of the model as the request resolved it (null: looked up now), so that a reload
    /// between the two cannot drop a rule that names one.</param>
    internal RequestGuardrails For(HttpContext http, string modelId, IReadOnlyList<string>? aliases = null)
    {
        var (input, output) = Lookup(modelId, aliases);
        if (input.Concat(output).Any(r => r.ExemptGroups.Count > 0))
        {
            var groups = http.User.FindAll(_groupsClaim).Select(c => c.Value.TrimStart('/')).ToHashSet(StringComparer.Ordinal);
            (input, output) = ([.. input.Where(r => !r.ExemptGroups.Any(groups.Contains))], [.. output.Where(r => !r.ExemptGroups.Any(groups.Contains))]);
        }

        return new RequestGuardrails(modelId, input, output, RequestAudit.Of(http).Guardrails, _observer);
    }

    private (GuardrailRule[] Input, GuardrailRule[] Output) Lookup(string modelId, IReadOnlyList<string>? aliases = null)
    {
        if (_rules.Count == 0)
        {
            return ([], []);
        }

        string[] names = [modelId, .. aliases ?? _aliasesOf(modelId)];
        return ([.. _rules.Where(r => r.Input && r.AppliesTo(names))], [.. _rules.Where(r => r.Output && r.AppliesTo(names))]);
    }
}

/// <summary>Refuses the start on a rule that cannot be used, naming its setting.</summary>
public sealed class GuardrailOptionsValidator : IValidateOptions<GuardrailOptions>
{
    public ValidateOptionsResult Validate(string? name, GuardrailOptions options)
    {
        var problems = options.Rules.Select((rule, i) => GuardrailRule.Compile(rule, i).Problem).OfType<string>().ToList();
        problems.AddRange(options.Rules.GroupBy(r => r.Name.Trim(), StringComparer.OrdinalIgnoreCase).Where(g => g.Key.Length > 0 && g.Count() > 1)
            .Select(g => $"{GuardrailOptions.Section}:Rules names '{g.Key}' {g.Count()} times; rule names must be unique"));
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
