using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Runtime.Onnx.Tokenization;
using Appliance.Tests.Common;
using OpenAI;
using OpenAI.Chat;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>
/// Folders written the way onnxruntime-genai's model builder writes them (float32, float16 and bfloat16 KV cache and
/// logits, int4 weights, Qwen2 with a sliding window and external weights), served together by one appliance: each
/// answers through the API with onnxruntime-genai's own greedy tokens, and /admin/pool shows each replica's memory
/// with its real KV element type.
/// </summary>
public sealed class BuilderExportTests(BuilderExportsServer server) : IClassFixture<BuilderExportsServer>
{
    private static (string Id, SyntheticModelSpec Spec, string KvType)[] Exports => BuilderExportsServer.Exports;

    private RunningAppliance Running => server.Running;

    private string Folder(string id) => server.Folder(id);

    [Fact]
    public async Task Every_export_completes_a_prompt_with_onnxruntime_genais_greedy_tokens()
    {
        const string prompt = "The appliance keeps its models on the device, and";
        var ids = Gpt2Tokenizer.Instance.Encode(prompt).ToArray();
        foreach (var (id, _, _) in Exports)
        {
            var expected = GenAiReference(Folder(id), ids, 12);
            Assert.True(expected.Distinct().Count() > 4, $"{id}: the reference should vary");

            var body = JsonSerializer.Serialize(new { model = id, prompt, max_tokens = 12, temperature = 0 });
            using var response = await Running.Http.PostAsync("/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{id}: {text}");
            using var json = JsonDocument.Parse(text);
            Assert.Equal(ids.Length, json.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
            Assert.Equal(Gpt2Tokenizer.Instance.Decode(expected), json.RootElement.GetProperty("choices")[0].GetProperty("text").GetString());
        }
    }

    [Fact]
    public async Task The_openai_sdk_streams_a_chat_from_a_float16_export_like_the_whole_answer()
    {
        var client = new ChatClient("llama-fp16", new ApiKeyCredential(Running.Token!), new OpenAIClientOptions { Endpoint = new Uri(Running.Http.BaseAddress!, "/v1") });
        ChatMessage[] conversation = [new UserChatMessage("Say something.")];
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 10, Temperature = 0 };

        ChatCompletion whole = await client.CompleteChatAsync(conversation, options);
        var streamed = new StringBuilder();
        await foreach (var update in client.CompleteChatStreamingAsync(conversation, options))
        {
            foreach (var part in update.ContentUpdate)
            {
                streamed.Append(part.Text);
            }
        }

        Assert.Equal(10, whole.Usage.OutputTokenCount);
        Assert.Equal(whole.Content[0].Text, streamed.ToString());
    }

    [Fact]
    public async Task The_pool_shows_each_replicas_device_and_host_memory_with_its_kv_type()
    {
        using var response = await Running.Http.GetAsync("/admin/pool");
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        using var json = JsonDocument.Parse(text);
        var models = json.RootElement.GetProperty("models").EnumerateArray().ToDictionary(m => m.GetProperty("id").GetString()!);
        foreach (var (id, spec, kvType) in Exports)
        {
            var memory = models[id].GetProperty("replicas")[0].GetProperty("memory");
            Assert.Equal(kvType, memory.GetProperty("kvType").GetString());
            var elementBytes = kvType == "float32" ? 4 : 2;
            // K and V, every layer, 4 sequences, KV heads, the full context, head size; one row of swap scratch; and the
            // prefix cache's pool of one context for every layer.
            var row = (long)spec.KvHeads * spec.ContextLength * spec.HeadSize * elementBytes;
            Assert.Equal((2L * spec.Layers * 4 * row) + row + (2L * spec.Layers * row), memory.GetProperty("kvCacheBytes").GetInt64());
            Assert.Equal(spec.ContextLength, memory.GetProperty("contextLength").GetInt32());
            Assert.True(memory.GetProperty("hostBytes").GetInt64() >= memory.GetProperty("deviceBytes").GetInt64(), "on a CPU slot the device is the host");
        }

        Assert.True(json.RootElement.GetProperty("hostMemoryPlacedBytes").GetInt64() > 0);
    }

    private static int[] GenAiReference(string folder, int[] prompt, int newTokens)
    {
        var file = Path.Combine(Path.GetTempPath(), $"appliance-prompt-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, JsonSerializer.Serialize(new[] { prompt }));
        try
        {
            var output = GenAiReferenceTool.Run(TimeSpan.FromMinutes(2), "generate", folder, file, newTokens.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return JsonSerializer.Deserialize<int[][]>(output)![0];
        }
        finally
        {
            File.Delete(file);
        }
    }
}

/// <summary>One appliance serving every builder-style export, shared by the tests that read it.</summary>
public sealed class BuilderExportsServer : IAsyncLifetime
{
    public static readonly (string Id, SyntheticModelSpec Spec, string KvType)[] Exports =
    [
        ("llama-fp32", SyntheticModelSpec.TinyLlama, "float32"),
        ("qwen2-window", SyntheticModelSpec.TinyLlama with { ModelType = "qwen2", QkvBias = true, SlidingWindow = 8, ExternalData = true, Seed = 3 }, "float32"),
        ("llama-fp16", SyntheticModelSpec.TinyLlama with { Precision = BoundaryPrecision.Float16, Seed = 4 }, "float16"),
        ("llama-bf16", SyntheticModelSpec.TinyLlama with { Precision = BoundaryPrecision.BFloat16, Seed = 5 }, "bfloat16"),
        ("llama-int4", SyntheticModelSpec.TinyLlama with { Int4Weights = true, Seed = 6 }, "float32"),
    ];

    private readonly TempFolder _root = new("builder-exports");
    private RunningAppliance? _running;

    internal RunningAppliance Running => _running ?? throw new InvalidOperationException("the server has not started");

    public string Folder(string id) => _root.Combine(id);

    public async Task InitializeAsync()
    {
        var args = new List<string> { "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=Warning" };
        foreach (var (id, spec, _) in Exports)
        {
            SyntheticModelFolder.Write(spec, Folder(id));
            args.AddRange([$"--Models:{id}:Path={Folder(id)}", $"--Models:{id}:IntraOpThreads=1", $"--Models:{id}:MaxBatchSize=4"]);
        }

        _running = await RunningAppliance.StartAsync([.. args]);
        await _running.WaitUntilReadyAsync();
    }

    public async Task DisposeAsync()
    {
        if (_running is not null)
        {
            await _running.DisposeAsync();
        }

        _root.Dispose();
    }
}

/// <summary>An export the runner cannot drive is refused when it loads, by name, and the node says why.</summary>
public sealed class UnusableExportTests
{
    [Fact]
    public async Task An_int8_kv_cache_is_refused_at_load_naming_the_tensor_and_requests_get_a_clear_error()
    {
        using var root = new TempFolder("unusable-export");
        var folder = root.Combine("int8-kv");
        SyntheticModelFolder.Write(SyntheticModelSpec.TinyLlama with { VocabularySize = 300, EosTokenId = 299 }, folder);
        OnnxModelEdits.RetypeInput(Path.Combine(folder, SyntheticModelFolder.ModelFileName), "past_key_values.0.value", 3);
        Appliance.Runtime.Onnx.Models.ModelManifest.Create(folder);
        await using var running = await RunningAppliance.StartAsync($"--Models:odd:Path={folder}", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=Critical");

        JsonElement model = default;
        for (var attempt = 0; attempt < 100 && model.ValueKind == JsonValueKind.Undefined; attempt++)
        {
            using var pool = JsonDocument.Parse(await running.Http.GetStringAsync("/admin/pool"));
            var entry = pool.RootElement.GetProperty("models").EnumerateArray().Single(m => m.GetProperty("id").GetString() == "odd");
            if (entry.GetProperty("state").GetString() == "failed")
            {
                model = entry.Clone();
            }
            else
            {
                await Task.Delay(100);
            }
        }

        Assert.Equal(JsonValueKind.Object, model.ValueKind);
        Assert.Contains("'past_key_values.0.value' is int8", model.GetProperty("error").GetString(), StringComparison.Ordinal);
        var body = JsonSerializer.Serialize(new { model = "odd", prompt = "Hello", max_tokens = 2 });
        using var response = await running.Http.PostAsync("/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains("failed to load", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
