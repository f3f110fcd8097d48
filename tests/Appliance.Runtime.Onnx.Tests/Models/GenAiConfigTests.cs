using System.Text.Json.Nodes;
using Appliance.Runtime.Onnx.Models;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Models;

/// <summary>genai_config.json as the model builder writes it for single-decoder and multi-component models.</summary>
public sealed class GenAiConfigTests : IDisposable
{
    private readonly TempFolder _root = new("genai-config");

    [Fact]
    public void A_builder_config_is_read_with_its_session_and_provider_options()
    {
        var config = Load(Builder("llama"));

        Assert.Equal("llama", config.ModelType);
        Assert.Equal([128001, 128008, 128009], config.EosTokenIds);
        Assert.True(config.Search.PastPresentShareBuffer);
        Assert.Equal("onnxruntime-genai", config.Decoder.SessionOptions.Entries["log_id"]);
        var (provider, options) = Assert.Single(config.Decoder.SessionOptions.Providers);
        Assert.Equal("cuda", provider);
        Assert.Equal("0", options["enable_cuda_graph"]);
    }

    [Fact]
    public void A_config_entries_object_is_read_as_session_entries()
    {
        var json = Builder("llama");
        json["model"]!["decoder"]!["session_options"]!.AsObject()["config_entries"] = new JsonObject { ["session.use_env_allocators"] = "1" };

        var config = Load(json);

        Assert.Equal("1", config.Decoder.SessionOptions.ConfigEntries["session.use_env_allocators"]);
    }

    [Theory]
    [InlineData("phi3v", "vision")]
    [InlineData("phi4mm", "speech")]
    [InlineData("whisper", null)]
    [InlineData("gemma3", "vision")]
    public void Multi_component_models_are_refused_naming_the_type_and_components(string type, string? section)
    {
        var json = Builder(type);
        if (section is not null)
        {
            json["model"]!.AsObject()[section] = new JsonObject { ["filename"] = $"{section}.onnx" };
        }

        var error = Assert.Throws<ModelFolderException>(() => Load(json));

        Assert.Contains($"model type '{type}'", error.Message, StringComparison.Ordinal);
        Assert.Contains(section ?? "multi-component", error.Message, StringComparison.Ordinal);
        Assert.Contains("single-decoder", error.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _root.Dispose();

    private GenAiConfig Load(JsonObject json)
    {
        var path = Path.Combine(_root.Path, GenAiConfig.FileName);
        File.WriteAllText(path, json.ToJsonString());
        return GenAiConfig.Load(path);
    }

    /// <summary>The shape the builder writes for Llama 3.1 on CUDA (values shortened).</summary>
    private static JsonObject Builder(string type) => JsonNode.Parse($$"""
        {
          "model": {
            "bos_token_id": 128000, "context_length": 131072, "eos_token_id": [128001, 128008, 128009], "pad_token_id": 128001,
            "type": "{{type}}", "vocab_size": 128256,
            "decoder": {
              "session_options": { "log_id": "onnxruntime-genai", "provider_options": [ { "cuda": { "enable_cuda_graph": "0", "enable_skip_layer_norm_strict_mode": "1" } } ] },
              "filename": "model.onnx", "head_size": 128, "hidden_size": 4096,
              "inputs": { "input_ids": "input_ids", "attention_mask": "attention_mask", "past_key_names": "past_key_values.%d.key", "past_value_names": "past_key_values.%d.value" },
              "outputs": { "logits": "logits", "present_key_names": "present.%d.key", "present_value_names": "present.%d.value" },
              "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8
            }
          },
          "search": { "do_sample": true, "max_length": 131072, "past_present_share_buffer": true, "temperature": 0.6, "top_k": 50, "top_p": 0.9 }
        }
        """)!.AsObject();
}
