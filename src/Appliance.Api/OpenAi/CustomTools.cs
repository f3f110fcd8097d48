using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.RegularExpressions;
using Appliance.Grammar;
using Appliance.Prompting;

namespace Appliance.Api.OpenAi;

/// <summary>
/// Custom tools (OpenAI's freeform tools): a tool whose input is text, free or matching a regular expression. The model
/// is shown a function with one string parameter (<see cref="FreeformInput"/>); a regex grammar becomes that
/// parameter's <c>pattern</c>, anchored at both ends because the whole input must match, so a forced tool_choice
/// enforces it while sampling like any JSON Schema pattern. A Lark grammar is read as the language of its texts
/// (<see cref="TextGrammar"/>, recursion unrolled to a bounded depth) and enforced the same way.
/// </summary>
internal static class CustomTools
{
    /// <summary>How long a call's input may be checked against its regex (an answer under tool_choice auto) before it counts as not matching.</summary>
    private static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(250);

    private const int CachedGrammars = 64;

    private static readonly ConcurrentDictionary<string, TextGrammar> LarkGrammars = new(StringComparer.Ordinal);

    private const string Prefix = "^(?:";
    private const string Suffix = ")$";

    /// <summary>
    /// Reads the <c>custom</c> object of a tool (chat's shape; the Responses API's flat tool reads the same):
    /// <c>name</c>, <c>description</c>, <c>format</c> (<c>{"type":"text"}</c>, or <c>{"type":"grammar"}</c> with
    /// <c>syntax</c> and <c>definition</c> in a nested <c>grammar</c> object, as chat writes them, or beside the type,
    /// as the Responses API writes them).
    /// </summary>
    public static ToolDefinition Read(JsonElement custom, string param)
    {
        var name = custom.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : null;
        if (name is null || !ToolUse.IsFunctionName(name))
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"'{param}.name' is required: 1 to 64 letters, digits, underscores or dashes.", $"{param}.name"));
        }

        var description = custom.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
        var (pattern, grammar) = InputFormat(custom, $"{param}.format");
        return new ToolDefinition(name, description, FreeformInput.ParametersFor(pattern is null ? null : Anchored(pattern), grammar), Strict: true, Freeform: true, InputPattern: pattern, InputGrammar: grammar);
    }

    /// <summary>The Lark grammar a custom tool's input follows (read once per definition), or null.</summary>
    public static TextGrammar? Grammar(ToolDefinition tool) => tool.InputGrammar is { } definition ? Lark(definition, "tools") : null;

    /// <summary>Whether a call's input satisfies its tool's regex grammar (always, for a text tool).</summary>
    public static bool InputMatches(ToolDefinition tool, string input)
    {
        if (Grammar(tool) is { } grammar)
        {
            return grammar.Matches(input);
        }

        if (tool.InputPattern is not { } pattern)
        {
            return true;
        }

        try
        {
            // Whole: .NET's $ also matches before a final line feed.
            var match = Regex.Match(input, Anchored(pattern), RegexOptions.CultureInvariant, MatchTimeout);
            return match.Success && match.Index == 0 && match.Length == input.Length;
        }
        catch (RegexMatchTimeoutException)
        {
            return false;
        }
    }

    /// <summary>The regex grammar's definition, or the Lark grammar; neither for text input.</summary>
    private static (string? Pattern, string? Lark) InputFormat(JsonElement custom, string param)
    {
        if (!custom.TryGetProperty("format", out var format) || format.ValueKind == JsonValueKind.Null)
        {
            return (null, null);
        }

        var type = format.ValueKind == JsonValueKind.Object && format.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        if (type == "text")
        {
            return (null, null);
        }

        if (type != "grammar")
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"'{param}.type' must be 'text' or 'grammar'.", $"{param}.type"));
        }

        var (grammar, grammarParam) = format.TryGetProperty("grammar", out var nested) && nested.ValueKind == JsonValueKind.Object
            ? (nested, $"{param}.grammar")
            : (format, param);
        var syntax = grammar.TryGetProperty("syntax", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
        var definition = grammar.TryGetProperty("definition", out var def) && def.ValueKind == JsonValueKind.String ? def.GetString() : null;
        if (syntax is not ("lark" or "regex"))
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"'{grammarParam}.syntax' must be 'lark' or 'regex'.", $"{grammarParam}.syntax"));
        }

        if (string.IsNullOrEmpty(definition))
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"'{grammarParam}.definition' must be a {(syntax == "lark" ? "Lark grammar" : "regular expression")}.", $"{grammarParam}.definition"));
        }

        if (syntax == "lark")
        {
            _ = Lark(definition, $"{grammarParam}.definition");
            return (null, definition);
        }

        var anchored = Anchored(definition);
        // The definition alone first: wrapped, "a)|(b" would read as a whole pattern.
        var refusal = RegexOnlyConstruct(definition)
            ?? Appliance.Grammar.StructuredOutputs.PatternRefusal(definition, "#/properties/input")
            ?? Appliance.Grammar.StructuredOutputs.PatternRefusal(anchored, "#/properties/input");
        if (refusal is null)
        {
            try
            {
                _ = new Regex(anchored, RegexOptions.CultureInvariant, MatchTimeout);
            }
            catch (ArgumentException invalid)
            {
                refusal = invalid.Message;
            }
        }

        return refusal is null
            ? (definition, null)
            : throw new OpenAiRequestException(OpenAiError.Invalid($"'{grammarParam}.definition' cannot be enforced as a regex grammar. {refusal}", $"{grammarParam}.definition", "unsupported_grammar"));
    }

    /// <summary>A Lark grammar, read once per definition (clients send the same tools with every request).</summary>
    private static TextGrammar Lark(string definition, string param)
    {
        if (LarkGrammars.TryGetValue(definition, out var known))
        {
            return known;
        }

        TextGrammar grammar;
        try
        {
            grammar = TextGrammar.Lark(definition);
        }
        catch (Appliance.Grammar.Schema.SchemaRefusedException refused)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"'{param}' cannot be enforced as a Lark grammar. {refused.Message}", param, "unsupported_grammar"));
        }

        if (LarkGrammars.Count >= CachedGrammars)
        {
            LarkGrammars.Clear(); // a bound, not an eviction policy: a handful of tool sets is the usual case
        }

        return LarkGrammars.GetOrAdd(definition, grammar);
    }

    /// <summary>
    /// The definition as a whole-input match: <c>^(?:…)$</c>, after taking off a <c>^</c> it starts with and a
    /// <c>$</c> it ends with (the input is matched whole either way).
    /// </summary>
    public static string Anchored(string definition)
    {
        var body = definition.StartsWith('^') ? definition[1..] : definition;
        if (body.EndsWith('$') && !EscapedAt(body, body.Length - 1))
        {
            body = body[..^1];
        }

        return Prefix + body + Suffix;
    }

    private static bool EscapedAt(string text, int index)
    {
        var backslashes = 0;
        for (var i = index - 1; i >= 0 && text[i] == '\\'; i--)
        {
            backslashes++;
        }

        return backslashes % 2 == 1;
    }

    /// <summary>
    /// OpenAI reads these definitions as Rust's regex crate does, which gives meaning inside a class to what ECMAScript
    /// reads as plain characters: a nested class (<c>[[a-z]]</c>, <c>[[:alpha:]]</c>) and set operations
    /// (<c>&amp;&amp;</c>, <c>--</c>, <c>~~</c>). Such a definition is refused rather than read differently.
    /// </summary>
    private static string? RegexOnlyConstruct(string definition)
    {
        var inClass = false;
        for (var i = 0; i < definition.Length; i++)
        {
            var c = definition[i];
            if (c == '\\')
            {
                i++; // the escaped character is literal
                continue;
            }

            if (!inClass)
            {
                if (c == '[')
                {
                    inClass = true;
                    if (i + 1 < definition.Length && definition[i + 1] == '^')
                    {
                        i++;
                    }

                    if (i + 1 < definition.Length && definition[i + 1] == ']')
                    {
                        i++; // a leading ] is a member in Rust's reading (ECMAScript's [] is refused later)
                    }
                }

                continue;
            }

            if (c == ']')
            {
                inClass = false;
            }
            else if (c == '[')
            {
                return "a '[' inside a class (a nested class in the regex syntax of custom tools; escape it as \\[)";
            }
            else if (i + 1 < definition.Length && definition[i + 1] == c && c is '&' or '-' or '~')
            {
                return $"'{c}{c}' inside a class (a set operation in the regex syntax of custom tools; escape one of them)";
            }
        }

        return null;
    }
}
