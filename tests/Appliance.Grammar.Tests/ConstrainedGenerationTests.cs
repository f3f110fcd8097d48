using System.Text;
using System.Text.Json;
using Appliance.Engine.Requests;
using Appliance.Engine.Sampling;
using Appliance.Grammar.Automaton;
using Appliance.Grammar.Language;
using Appliance.Grammar.Schema;
using Appliance.Tests.Common;
using Json.Schema;

namespace Appliance.Grammar.Tests;

/// <summary>
/// Sampling under a schema with the engine's own sampler, from random logits at temperature 1 (a model that knows
/// nothing): every output must parse and validate against its schema, ending within the token budget.
/// </summary>
public sealed class ConstrainedGenerationTests
{
    private const int GenerationsPerSchema = 50;

    private static readonly byte[]?[] Tokens = ToyVocabulary.Build(3000, seed: 11, out EndToken);
    private static readonly int EndToken;

    [Fact]
    public void Over_a_thousand_sampled_outputs_over_twenty_one_schemas_parse_and_validate()
    {
        var vocabulary = Vocabulary.TokenVocabulary.From(Tokens, Tokens.Length);
        var failures = new List<string>();
        var generations = 0;
        foreach (var (name, strict, schemaText) in StructuredOutputSchemas.All)
        {
            var grammar = Grammar(schemaText, strict, vocabulary);
            var validator = JsonSchema.FromText(schemaText);
            for (var i = 0; i < GenerationsPerSchema; i++)
            {
                var text = Generate(grammar, seed: (name.GetHashCode(StringComparison.Ordinal) * 31) + i, maxTokens: 160, out var ended);
                generations++;
                if (!ended)
                {
                    failures.Add($"{name} #{i}: no end token within the budget: {text}");
                    continue;
                }

                if (StructuredOutputSchemas.Problem(validator, text) is { } problem)
                {
                    failures.Add($"{name} #{i}: {problem}: {text}");
                }
            }
        }

        Assert.Equal(StructuredOutputSchemas.All.Length * GenerationsPerSchema, generations);
        Assert.True(generations >= 1000);
        Assert.True(failures.Count == 0, string.Join('\n', failures.Take(10)));
    }

    [Theory]
    [InlineData(LarkGrammarTests.Patch)]
    [InlineData(LarkGrammarTests.Arithmetic)]
    [InlineData(LarkGrammarTests.Commands)]
    [InlineData(LarkGrammarTests.Rows)]
    [InlineData(LarkGrammarTests.Query)]
    [InlineData(LarkGrammarTests.Values)]
    public void Inputs_sampled_under_a_Lark_grammar_are_parsed_by_Lark(string lark)
    {
        var vocabulary = Vocabulary.TokenVocabulary.From(Tokens, Tokens.Length);
        var nfa = new Nfa();
        nfa.Accept = Lang.Seq(Lang.Text("\""), TextGrammar.Lark(lark).JsonContent(), Lang.Text("\"")).Emit(nfa, nfa.Start);
        var grammar = new ConstrainedGrammar(nfa, vocabulary);
        var inputs = new List<string>();
        for (var i = 0; i < 30; i++)
        {
            var text = Generate(grammar, seed: i, maxTokens: 200, out var ended);
            Assert.True(ended, $"no end token within the budget: {text}");
            inputs.Add(JsonSerializer.Deserialize<string>(text)!); // the input as the tool receives it
        }

        var verdicts = ReferenceLark.Parses(lark, inputs);
        var refused = inputs.Where((input, i) => !verdicts[i]).Select(input => JsonSerializer.Serialize(input)).ToList();
        Assert.True(refused.Count == 0, $"Lark refuses: {string.Join('\n', refused.Take(5))}");
        Assert.True(inputs.Distinct().Count() > 10, "sampling at temperature 1 should give varied inputs");
    }

    [Fact]
    public void A_tight_budget_still_ends_in_complete_JSON()
    {
        var vocabulary = Vocabulary.TokenVocabulary.From(Tokens, Tokens.Length);
        var (_, strict, schemaText) = StructuredOutputSchemas.All.Single(s => s.Name == "nested");
        var grammar = Grammar(schemaText, strict, vocabulary);
        var validator = JsonSchema.FromText(schemaText);
        for (var i = 0; i < 20; i++)
        {
            // The shortest output is 51 bytes; 60 tokens leave almost no room for the model's own choices, and the
            // last one is kept for the end token.
            var text = Generate(grammar, seed: i, maxTokens: 60, out var ended);
            Assert.True(ended, text);
            Assert.Null(StructuredOutputSchemas.Problem(validator, text));
        }
    }

    [Fact]
    public void Greedy_picks_the_models_choice_wherever_the_schema_allows_it()
    {
        var vocabulary = Vocabulary.TokenVocabulary.From(Tokens, Tokens.Length);
        var (_, strict, schemaText) = StructuredOutputSchemas.All.Single(s => s.Name == "array of objects");
        var grammar = Grammar(schemaText, strict, vocabulary);
        var random = new Random(5);
        var agreed = 0;
        for (var run = 0; run < 20; run++)
        {
            var state = grammar.Start();
            for (var step = 0; step < 60 && !state.IsComplete; step++)
            {
                var logits = RandomLogits(random);
                var free = TokenSampler.ArgMax(logits);
                var masked = (float[])logits.Clone();
                state.Restrict(masked, new HashSet<int> { EndToken }, 100);
                var constrained = TokenSampler.ArgMax(masked);
                if (!float.IsNegativeInfinity(masked[free]))
                {
                    Assert.Equal(free, constrained);
                    agreed++;
                }

                Assert.False(float.IsNegativeInfinity(masked[constrained]));
                state.Accept(constrained);
            }
        }

        Assert.True(agreed > 0, "the schema never allowed the model's own choice: nothing was compared");
    }

    [Fact]
    public void Each_states_mask_equals_matching_every_token_on_its_own()
    {
        var vocabulary = Vocabulary.TokenVocabulary.From(Tokens, Tokens.Length);
        using var document = JsonDocument.Parse(StructuredOutputSchemas.All.Single(s => s.Name == "anyOf").Schema);
        var nfa = new Nfa();
        nfa.Accept = Lang.Seq(JsonLanguage.Whitespace, SchemaCompiler.Compile(document.RootElement, true)).Emit(nfa, nfa.Start);
        var grammar = new ConstrainedGrammar(nfa, vocabulary);
        var reference = new LazyDfa(nfa);

        var text = Encoding.UTF8.GetBytes("""{"value": {"x": 1.5}}""");
        var state = reference.Start;
        for (var position = 0; position <= text.Length; position++)
        {
            var table = grammar.TableFor(grammar.Walk(0, text.AsSpan(0, position)));
            for (var token = 0; token < Tokens.Length; token++)
            {
                var end = Tokens[token] is { } bytes ? reference.Walk(state, bytes) : LazyDfa.Dead;
                var expected = end == LazyDfa.Dead ? TokenTable.Forbidden : (byte)Math.Min(reference.BytesToAccept(end), TokenTable.Far);
                Assert.True(expected == table[token], $"after {position} bytes, token {token}: {expected} != {table[token]}");
            }

            if (position < text.Length)
            {
                state = reference.Step(state, text[position]);
            }
        }
    }

    private static ConstrainedGrammar Grammar(string schema, bool strict, Vocabulary.TokenVocabulary vocabulary)
    {
        using var document = JsonDocument.Parse(schema);
        var nfa = new Nfa();
        nfa.Accept = Lang.Seq(JsonLanguage.Whitespace, SchemaCompiler.Compile(document.RootElement, strict)).Emit(nfa, nfa.Start);
        return new ConstrainedGrammar(nfa, vocabulary);
    }

    private static string Generate(ConstrainedGrammar grammar, int seed, int maxTokens, out bool ended)
    {
        var sampler = new TokenSampler(Tokens.Length);
        var state = new SamplingState(new SamplingParams { Temperature = 1f, MaxTokens = maxTokens, Constraint = grammar }, [], seed);
        var random = new Random(seed);
        var output = new List<byte>();
        var endTokens = new HashSet<int> { EndToken };
        ended = false;
        for (var step = 0; step < maxTokens; step++)
        {
            var (token, _) = sampler.Sample(RandomLogits(random), state, endTokens);
            if (token == EndToken)
            {
                ended = true;
                break;
            }

            output.AddRange(Tokens[token]!);
        }

        return Encoding.UTF8.GetString([.. output]);
    }

    private static float[] RandomLogits(Random random)
    {
        var logits = new float[Tokens.Length];
        for (var i = 0; i < logits.Length; i++)
        {
            logits[i] = (float)(random.NextDouble() * 8);
        }

        return logits;
    }
}
