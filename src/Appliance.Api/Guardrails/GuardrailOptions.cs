namespace Appliance.Api.Guardrails;

/// <summary>
/// The operator's guardrails (configuration "Guardrails"): rules that find sensitive or forbidden text in what callers
/// send and in what models answer, and either refuse it or mask it. Read at start.
/// </summary>
public sealed class GuardrailOptions
{
    public const string Section = "Guardrails";

    public List<GuardrailRuleOptions> Rules { get; set; } = [];
}

/// <summary>One rule as written: what it finds (one of Detector, Pattern, Words), what it does, where, for which models.</summary>
public sealed class GuardrailRuleOptions
{
    /// <summary>Names the rule in errors, the audit log and metrics; unique.</summary>
    public string Name { get; set; } = string.Empty;

    /// <summary>A built-in detector: Email, CreditCard, Iban, Phone, IpAddress, UsSsn.</summary>
    public string? Detector { get; set; }

    /// <summary>A .NET regular expression, run by the linear-time matcher (no lookarounds or back-references).</summary>
    public string? Pattern { get; set; }

    /// <summary>Words or phrases, matched whole and regardless of case.</summary>
    public List<string> Words { get; set; } = [];

    public GuardrailAction Action { get; set; } = GuardrailAction.Block;

    public GuardrailDirection Applies { get; set; } = GuardrailDirection.Both;

    /// <summary>Model ids the rule applies to; empty: every model.</summary>
    public List<string> Models { get; set; } = [];

    /// <summary>Keycloak groups ("/fraud") whose members this rule does not screen (a team whose work is that data).</summary>
    public List<string> ExemptGroups { get; set; } = [];

    /// <summary>What a masked match is replaced by; default the detector's label (e.g. [EMAIL]) or [NAME OF THE RULE].</summary>
    public string? Mask { get; set; }

    /// <summary>
    /// For a Pattern: the longest text it should match (default 64). A streamed answer is held back this many
    /// characters so that a match is whole before any of it is sent.
    /// </summary>
    public int? MaxLength { get; set; }
}

public enum GuardrailAction
{
    /// <summary>Input: the request is refused (400 content_filter). Output: the answer ends before the match.</summary>
    Block,

    /// <summary>The match is replaced by the rule's mask; the model never reads it, the caller never receives it.</summary>
    Mask,
}

public enum GuardrailDirection
{
    Both,
    Input,
    Output,
}
