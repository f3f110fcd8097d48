using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Appliance.Engine;
using Appliance.Engine.Sampling;
using Appliance.Grammar.Automaton;
using Appliance.Grammar.Language;
using Appliance.Grammar.Schema;
using Appliance.Grammar.Vocabulary;

namespace Appliance.Grammar;

/// <summary>
/// Structured outputs for one model: JSON mode and JSON Schema constraints over its vocabulary. The vocabulary is read
/// from the tokenizer on first use; compiled grammars are kept per schema (the most recent <see cref="CachedGrammars"/>),
/// so a schema an application sends with every request is compiled and matched against the vocabulary once.
/// </summary>
public sealed class StructuredOutputs
{
    public const int CachedGrammars = 8;

    private static readonly ConditionalWeakTable<ITokenizer, ConcurrentDictionary<(int Size, string Markers), StructuredOutputs>> PerTokenizer = [];

    private readonly Lazy<TokenVocabulary> _vocabulary;
    private readonly ConcurrentDictionary<string, (ConstrainedGrammar Grammar, long UsedAt)> _grammars = new(StringComparer.Ordinal);
    private long _clock;

    private StructuredOutputs(ITokenizer tokenizer, int vocabularySize, IReadOnlyCollection<string> markers) =>
        _vocabulary = new Lazy<TokenVocabulary>(() => TokenVocabulary.From(tokenizer, vocabularySize, markers));

    /// <summary>
    /// The structured outputs of the model with this tokenizer and logits width: one per pair (and markers), kept while
    /// the tokenizer lives (a reloaded model has a new tokenizer, so its old grammars go with the old one).
    /// <paramref name="markers"/>: texts of special tokens the output may hold as those tokens (a forced tool call's
    /// markers); other special tokens never appear inside a constrained output, nor do these without being asked for.
    /// </summary>
    public static StructuredOutputs For(ITokenizer tokenizer, int vocabularySize, IReadOnlyCollection<string>? markers = null)
    {
        var admitted = markers is { Count: > 0 } ? markers.Order(StringComparer.Ordinal).ToList() : [];
        return PerTokenizer.GetValue(tokenizer, _ => new ConcurrentDictionary<(int, string), StructuredOutputs>())
            .GetOrAdd((vocabularySize, string.Join('\n', admitted)), key => new StructuredOutputs(tokenizer, key.Size, admitted));
    }

    /// <summary>Any JSON object (OpenAI's json_object mode).</summary>
    public ITokenConstraint JsonObject() => Grammar("object", () => Lang.Seq(JsonLanguage.Whitespace, JsonLanguage.AnyObject(JsonLanguage.AnyValue(JsonLanguage.GenericDepth - 1))));

    /// <summary>JSON satisfying <paramref name="schema"/>. Throws <see cref="SchemaRefusedException"/> naming what cannot be enforced.</summary>
    public ITokenConstraint JsonSchema(JsonElement schema, bool strict) =>
        Grammar($"{(strict ? "strict" : "loose")}:{schema.GetRawText()}", () => Lang.Seq(JsonLanguage.Whitespace, SchemaCompiler.Compile(schema, strict)));

    /// <summary>
    /// One or more calls of the given functions laid out as a model's tool-call format writes them (<paramref name="layout"/>),
    /// each call's arguments fitting its function's parameter schema. Throws <see cref="SchemaRefusedException"/> for a
    /// parameter schema that cannot be enforced.
    /// </summary>
    public ITokenConstraint ToolCalls(ToolCallLayout layout, IReadOnlyList<(string Name, string Parameters, bool Strict, TextGrammar? Input)> functions, bool parallel) =>
        ToolCallsOr(layout, functions, parallel, answer: null);

    /// <summary>
    /// Either tool calls as <see cref="ToolCalls"/> writes them, or an answer that is JSON satisfying
    /// <paramref name="schema"/> (any object when null): tools offered beside a JSON response_format, where the model
    /// decides which. Throws <see cref="SchemaRefusedException"/> for a schema that cannot be enforced.
    /// </summary>
    public ITokenConstraint ToolCallsOrJson(
        ToolCallLayout layout, IReadOnlyList<(string Name, string Parameters, bool Strict, TextGrammar? Input)> functions, bool parallel, JsonElement? schema, bool strict) =>
        ToolCallsOr(layout, functions, parallel, (schema is { } s ? $"{(strict ? "strict" : "loose")}:{s.GetRawText()}" : "object",
            () => schema is { } given ? SchemaCompiler.Compile(given, strict) : JsonLanguage.AnyObject(JsonLanguage.AnyValue(JsonLanguage.GenericDepth - 1))));

    private ConstrainedGrammar ToolCallsOr(
        ToolCallLayout layout, IReadOnlyList<(string Name, string Parameters, bool Strict, TextGrammar? Input)> functions, bool parallel, (string Key, Func<Lang> Language)? answer)
    {
        var key = JsonSerializer.Serialize(new { layout, functions = functions.Select(f => new[] { f.Name, f.Parameters, f.Strict ? "strict" : "loose", f.Input?.Definition }) });
        // Each call the answer may hold is a copy of the calls' automaton: where eight copies of large schemas (a
        // function without properties takes any object) do not fit, the answer may hold fewer calls rather than none.
        for (var calls = parallel ? MaxParallelCalls : 1; ; calls /= 2)
        {
            try
            {
                var most = calls;
                return Grammar($"tools:{most}:{key}{(answer is { } a ? $"|or:{a.Key}" : null)}", () =>
                {
                    var call = Lang.Any(functions.Select(function =>
                    {
                        using var schema = JsonDocument.Parse(function.Parameters);
                        return Lang.Seq(
                            Lang.Text(layout.Open), layout.QuotedName ? JsonLanguage.Literal(function.Name) : Lang.Text(function.Name), Lang.Text(layout.BeforeArguments),
                            function.Input is { } input ? TextArguments(input) : SchemaCompiler.Compile(schema.RootElement, function.Strict),
                            Lang.Text(layout.Close));
                    }).ToList());
                    var toolCalls = Lang.Seq(Lang.Text(layout.Prefix), Lang.SeparatedList(call, Lang.Text(layout.Separator), 1, most), Lang.Text(layout.Suffix));
                    return Lang.Seq(JsonLanguage.Whitespace, answer is { } json ? Lang.Any(toolCalls, json.Language()) : toolCalls);
                });
            }
            catch (GrammarTooLargeException) when (calls > 1)
            {
            }
        }
    }

    /// <summary>A custom tool's arguments, <c>{"input": "..."}</c>, the input one of the grammar's texts.</summary>
    private static Lang TextArguments(TextGrammar input) => Lang.Seq(
        Lang.Text("{"), JsonLanguage.Whitespace, Lang.Text("\"input\""), JsonLanguage.Whitespace, Lang.Text(":"), JsonLanguage.Whitespace,
        Lang.Text("\""), input.JsonContent(), Lang.Text("\""), JsonLanguage.Whitespace, Lang.Text("}"));

    /// <summary>Why a JSON Schema <c>pattern</c> (at <paramref name="path"/> of its schema) cannot be enforced, or null when it can.</summary>
    public static string? PatternRefusal(string pattern, string path)
    {
        try
        {
            _ = PatternLanguage.Of(pattern, path);
            return null;
        }
        catch (SchemaRefusedException refused)
        {
            return refused.Message;
        }
    }

    /// <summary>The most calls one forced answer may hold.</summary>
    public const int MaxParallelCalls = 8;

    private ConstrainedGrammar Grammar(string key, Func<Lang> language)
    {
        var now = Interlocked.Increment(ref _clock);
        if (_grammars.TryGetValue(key, out var known) && !known.Grammar.Exhausted)
        {
            _grammars[key] = (known.Grammar, now);
            return known.Grammar;
        }

        var nfa = new Nfa();
        nfa.Accept = language().Emit(nfa, nfa.Start);
        var grammar = new ConstrainedGrammar(nfa, _vocabulary.Value);
        _grammars[key] = (grammar, now);
        while (_grammars.Count > CachedGrammars && _grammars.MinBy(entry => entry.Value.UsedAt) is { Key: { } oldest })
        {
            _grammars.TryRemove(oldest, out _);
        }

        return grammar;
    }
}
