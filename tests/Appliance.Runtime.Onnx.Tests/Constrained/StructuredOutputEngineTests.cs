using System.Text.Json;
using Appliance.Engine;
using Appliance.Engine.Requests;
using Appliance.Engine.Scheduling;
using Appliance.Grammar;
using Appliance.Runtime.Onnx.Tokenization;
using Appliance.Tests.Common;
using Json.Schema;

namespace Appliance.Runtime.Onnx.Tests.Constrained;

/// <summary>
/// Structured outputs on the engine with a real ONNX model whose weights are random (it knows no JSON), GPT-2's
/// vocabulary of 50,257 byte-level tokens, temperature 1 and batches of 16: every output parses and validates.
/// </summary>
[Collection(LlamaModelCollection.Name)]
public sealed class StructuredOutputEngineTests(LlamaModelFixture model)
{
    private const int GenerationsPerSchema = 50;

    private static readonly int[] Prompt = [464, 1708, 318, 257, 1332, 286, 19449, 13];

    [Fact]
    public async Task Over_a_thousand_sampled_outputs_over_twenty_one_schemas_parse_and_validate()
    {
        using var engine = model.CreateEngine(new SchedulerOptions { MaxBatchSize = 16 });
        var outputs = StructuredOutputs.For(Gpt2Tokenizer.Instance, engine.Model.VocabularySize);
        var failures = new List<string>();
        var results = 0;
        foreach (var (name, strict, schemaText) in StructuredOutputSchemas.All)
        {
            using var schemaDocument = JsonDocument.Parse(schemaText);
            var sampling = new SamplingParams { Temperature = 1f, MaxTokens = 160, Constraint = outputs.JsonSchema(schemaDocument.RootElement, strict) };
            var runs = await Task.WhenAll(Enumerable.Range(0, GenerationsPerSchema).Select(i =>
                engine.Submit(new GenerationRequest($"{name}-{i}", Prompt, sampling with { Seed = i })).CollectAsync()));
            var validator = JsonSchema.FromText(schemaText);
            foreach (var (run, i) in runs.Select((r, i) => (r, i)))
            {
                results++;
                if (StructuredOutputSchemas.Problem(validator, run.Text) is { } problem)
                {
                    failures.Add($"{name} #{i} ({run.FinishReason}, {run.TokenIds.Count} tokens): {problem}: {run.Text}");
                }
                else if (run.FinishReason != FinishReason.Stop)
                {
                    failures.Add($"{name} #{i}: complete JSON, but it ended with {run.FinishReason} rather than the end token: {run.Text}");
                }
            }
        }

        Assert.Equal(StructuredOutputSchemas.All.Length * GenerationsPerSchema, results);
        Assert.True(results >= 1000);
        Assert.True(failures.Count == 0, $"{failures.Count} failed; first: " + string.Join('\n', failures.Take(5)));
    }

    [Fact]
    public async Task Json_mode_gives_an_object_and_ends_with_the_models_end_token()
    {
        using var engine = model.CreateEngine();
        var sampling = new SamplingParams { Temperature = 1f, MaxTokens = 120, Constraint = StructuredOutputs.For(Gpt2Tokenizer.Instance, engine.Model.VocabularySize).JsonObject() };
        var runs = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => engine.Submit(new GenerationRequest($"json-{i}", Prompt, sampling with { Seed = i })).CollectAsync()));

        foreach (var run in runs)
        {
            using var parsed = JsonDocument.Parse(run.Text);
            Assert.Equal(JsonValueKind.Object, parsed.RootElement.ValueKind);
        }

        Assert.Contains(runs, run => run.FinishReason == FinishReason.Stop); // the end token, allowed once the object closed
    }

    [Fact]
    public async Task Constrained_greedy_output_is_the_free_greedy_output_while_the_model_stays_inside_the_schema()
    {
        // Any JSON string: after its opening quote nearly every token fits, so the constrained greedy run must follow
        // the free greedy run (from the same tokens) until the free choice is one a string cannot hold there.
        using var engine = model.CreateEngine();
        using var schema = JsonDocument.Parse("""{"type":"string"}""");
        var constraint = StructuredOutputs.For(Gpt2Tokenizer.Instance, engine.Model.VocabularySize).JsonSchema(schema.RootElement, strict: false);
        var constrained = await engine.Submit(new GenerationRequest("constrained", Prompt, new SamplingParams { Temperature = 0, MaxTokens = 40, Constraint = constraint })).CollectAsync();
        var opening = constrained.TokenIds[0];
        Assert.StartsWith("\"", Gpt2Tokenizer.Instance.Decode([opening]).TrimStart(), StringComparison.Ordinal); // how a JSON string starts
        var free = await engine.Submit(new GenerationRequest("free", [.. Prompt, opening], new SamplingParams { Temperature = 0, MaxTokens = 12, IgnoreEos = true })).CollectAsync();

        var agreeing = free.TokenIds.Zip(constrained.TokenIds.Skip(1)).TakeWhile(pair => pair.First == pair.Second).Count();
        Assert.True(agreeing > 0 || free.TokenIds.Count == 0 || IsStringBreaking(free.TokenIds[0]), "the runs part at once");
        var firstDifference = agreeing < Math.Min(free.TokenIds.Count, constrained.TokenIds.Count - 1) ? Gpt2Tokenizer.Instance.Decode([free.TokenIds[agreeing]]) : null;
        // Where they part, the free token must be one a JSON string cannot hold at that point (a quote, a backslash or a control character).
        Assert.True(firstDifference is null || firstDifference.Any(c => c is '"' or '\\' || char.IsControl(c)),
            $"they part at token {agreeing} although the free choice '{firstDifference}' fits inside a string");
    }

    private static bool IsStringBreaking(int token) => Gpt2Tokenizer.Instance.Decode([token]).Any(c => c is '"' or '\\' || char.IsControl(c));
}
