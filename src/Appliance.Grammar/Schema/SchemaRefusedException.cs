namespace Appliance.Grammar.Schema;

/// <summary>A schema the constrained decoder cannot enforce or that breaks strict mode's rules; the message names the keyword and where it is.</summary>
public sealed class SchemaRefusedException(string message, string? keyword = null) : Exception(message)
{
    /// <summary>The keyword refused (for example "pattern"), when one is.</summary>
    public string? Keyword { get; } = keyword;
}
