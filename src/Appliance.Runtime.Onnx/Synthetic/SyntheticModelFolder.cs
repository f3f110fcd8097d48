using System.Text.Json;
using System.Text.Json.Nodes;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Runtime.Onnx.Synthetic;

/// <summary>
/// Writes a complete model folder for a synthetic decoder: model.onnx (and model.onnx.data when the weights are
/// external), genai_config.json (onnxruntime-genai's schema; model type "decoder" for GPT-2 style, the family's
/// name for builder style), GPT-2's tokenizer.json and tokenizer_config.json, and manifest.json.
/// </summary>
public static class SyntheticModelFolder
{
    public const string ModelFileName = "model.onnx";

    public const string ExternalDataFileName = "model.onnx.data";

    public static ModelManifest Write(SyntheticModelSpec spec, string folder)
    {
        if (spec.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(spec));
        }

        Directory.CreateDirectory(folder);
        using (var stream = File.Create(Path.Combine(folder, ModelFileName)))
        {
            if (spec.Architecture == SyntheticArchitecture.Llama)
            {
                using var data = spec.ExternalData ? File.Create(Path.Combine(folder, ExternalDataFileName)) : null;
                LlamaDecoderGraph.Write(LlamaWeights.Create(spec), stream, data, ExternalDataFileName);
            }
            else
            {
                SyntheticDecoderGraph.Write(SyntheticWeights.Create(spec), stream);
            }
        }

        var indented = new JsonSerializerOptions { WriteIndented = true };
        File.WriteAllText(Path.Combine(folder, GenAiConfig.FileName), GenAiConfigJson(spec).ToJsonString(indented));
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), TokenizerConfigJson().ToJsonString(indented));
        Gpt2TokenizerJson.Write(Path.Combine(folder, "tokenizer.json"));
        File.WriteAllText(Path.Combine(folder, "synthetic.json"), JsonSerializer.Serialize(spec, indented));
        return ModelManifest.Create(folder);
    }

    private static JsonArray ProviderOptions(SyntheticModelSpec spec) =>
        spec.CudaTf32 ? [] : [new JsonObject { ["cuda"] = new JsonObject { ["use_tf32"] = "0" } }];

    private static JsonObject GenAiConfigJson(SyntheticModelSpec spec) => new()
    {
        ["model"] = new JsonObject
        {
            ["bos_token_id"] = spec.EosTokenId,
            ["context_length"] = spec.ContextLength,
            ["eos_token_id"] = spec.EosTokenId,
            ["pad_token_id"] = spec.EosTokenId,
            ["type"] = spec.ModelType,
            ["vocab_size"] = spec.VocabularySize,
            ["decoder"] = new JsonObject
            {
                ["session_options"] = new JsonObject { ["log_id"] = "onnxruntime-genai", ["provider_options"] = ProviderOptions(spec) },
                ["filename"] = ModelFileName,
                ["head_size"] = spec.HeadSize,
                ["hidden_size"] = spec.HiddenSize,
                ["num_attention_heads"] = spec.Heads,
                ["num_hidden_layers"] = spec.Layers,
                ["num_key_value_heads"] = spec.KvHeads,
                ["inputs"] = Inputs(spec),
                ["outputs"] = new JsonObject
                {
                    ["logits"] = "logits",
                    ["present_key_names"] = "present.%d.key",
                    ["present_value_names"] = "present.%d.value",
                },
            },
        },
        ["search"] = new JsonObject
        {
            ["diversity_penalty"] = 0.0,
            ["do_sample"] = false,
            ["early_stopping"] = true,
            ["length_penalty"] = 1.0,
            ["max_length"] = spec.ContextLength,
            ["min_length"] = 0,
            ["no_repeat_ngram_size"] = 0,
            ["num_beams"] = 1,
            ["num_return_sequences"] = 1,
            ["past_present_share_buffer"] = spec.Layout != KvCacheLayout.Concatenating,
            ["repetition_penalty"] = 1.0,
            ["temperature"] = 1.0,
            ["top_k"] = 1,
            ["top_p"] = 1.0,
        },
    };

    /// <summary>The builder names position_ids only when the graph has it (not when rotary runs inside attention).</summary>
    private static JsonObject Inputs(SyntheticModelSpec spec)
    {
        var inputs = new JsonObject { ["input_ids"] = "input_ids", ["attention_mask"] = "attention_mask" };
        if (spec.Architecture == SyntheticArchitecture.Gpt2 || LlamaDecoderGraph.RotaryOutsideAttention(spec))
        {
            inputs["position_ids"] = "position_ids";
        }

        inputs["past_key_names"] = "past_key_values.%d.key";
        inputs["past_value_names"] = "past_key_values.%d.value";
        return inputs;
    }

    private static JsonObject TokenizerConfigJson() => new()
    {
        ["tokenizer_class"] = "GPT2Tokenizer",
        ["bos_token"] = "<|endoftext|>",
        ["eos_token"] = "<|endoftext|>",
        ["unk_token"] = "<|endoftext|>",
        ["add_bos_token"] = false,
        ["model_max_length"] = 1024,
    };
}
