using System.Collections.Concurrent;
using Appliance.Api.Audit;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace Appliance.Api.Guardrails;

/// <summary>The node's guardrail rules, compiled once; which of them apply to a model is looked up once per model.</summary>
public sealed class GuardrailSet
{
    private readonly IReadOnlyList<GuardrailRule> _rules;
    private readonly IGuardrailObserver? _observer;
    private readonly ConcurrentDictionary<string, (GuardrailRule[] Input, GuardrailRule[] Output)> _byModel = new(StringComparer.OrdinalIgnoreCase);

    public GuardrailSet(IOptions<GuardrailOptions> options, IGuardrailObserver? observer = null)
    {
        _rules = [.. options.Value.Rules.Select((rule, i) => GuardrailRule.Compile(rule, i).Rule
            ?? throw new InvalidOperationException(GuardrailRule.Compile(rule, i).Problem))];
        _observer = observer;
    }

    /// <summary>Model ids the rules name (to warn of one no model has).</summary>
    public IEnumerable<(string Rule, string Model)> NamedModels => _rules.SelectMany(r => r.Models.Select(m => (r.Name, m)));

    internal RequestGuardrails For(HttpContext http, string modelId)
    {
        var (input, output) = _byModel.GetOrAdd(modelId, id =>
            ([.. _rules.Where(r => r.Input && r.AppliesTo(id))], [.. _rules.Where(r => r.Output && r.AppliesTo(id))]));
        return new RequestGuardrails(modelId, input, output, RequestAudit.Of(http).Guardrails, _observer);
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
