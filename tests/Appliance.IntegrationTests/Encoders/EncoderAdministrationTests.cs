using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Appliance.Runtime.Onnx.Embeddings;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Encoders;

/// <summary>
/// A declared cross-encoder through an administrator's unload, load and reload (what the Ansible models role calls): a
/// new version takes the requests, a broken one leaves the old one serving, and an unloaded model answers 503.
/// </summary>
public sealed class EncoderAdministrationTests : IDisposable
{
    private static readonly string[] Vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "dog", "ran", "."];

    private readonly TempFolder _root = new("encoder-admin");

    private static async Task<(HttpStatusCode Status, JsonElement Body)> RerankAsync(RunningAppliance running)
    {
        using var response = await running.Http.PostAsJsonAsync("/v1/rerank", new { model = "reranker", query = "the cat", documents = new[] { "sat on the mat", "dog ran" } });
        return (response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>());
    }

    private static double FirstScore(JsonElement answer) =>
        answer.GetProperty("results").EnumerateArray().Single(r => r.GetProperty("index").GetInt32() == 0).GetProperty("relevance_score").GetDouble();

    private static async Task<string> AdminAsync(RunningAppliance running, string action, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var response = await running.Http.PostAsync($"/admin/models/reranker/{action}", null);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{action}: {(int)response.StatusCode} {body}");
        return body;
    }

    [Fact]
    public async Task Unload_load_and_reload_switch_versions_without_a_restart_and_a_broken_version_leaves_the_old_one_serving()
    {
        var folder = _root.Combine("reranker");
        new SyntheticCrossEncoder(Vocabulary.Length, seed: 1).WriteFolder(folder, Vocabulary, maxPositions: 32);
        await using var running = await RunningAppliance.StartAsync(
            $"--Appliance:DataFolder={_root.Combine("data")}", "--Appliance:BuiltInEmbeddings=false",
            $"--Models:reranker:Path={folder}", "--Models:reranker:IntraOpThreads=1", "--Logging:LogLevel:Default=Warning");
        await running.WaitUntilReadyAsync();
        var (status, first) = await RerankAsync(running);
        Assert.Equal(HttpStatusCode.OK, status);

        await AdminAsync(running, "unload");
        var (unloaded, error) = await RerankAsync(running);
        Assert.Equal((HttpStatusCode.ServiceUnavailable, "model_unavailable"), (unloaded, error.GetProperty("error").GetProperty("code").GetString()));
        await AdminAsync(running, "load");
        Assert.Equal(FirstScore(first), FirstScore((await RerankAsync(running)).Body));

        // A new version of the weights: the reload serves it.
        Directory.Delete(folder, recursive: true);
        new SyntheticCrossEncoder(Vocabulary.Length, seed: 2).WriteFolder(folder, Vocabulary, maxPositions: 32);
        Assert.Contains("ready on cpu", await AdminAsync(running, "reload"), StringComparison.Ordinal);
        var second = (await RerankAsync(running)).Body;
        Assert.NotEqual(FirstScore(first), FirstScore(second));
        var digest = (await running.Http.GetFromJsonAsync<JsonElement>("/v1/models/reranker")).GetProperty("digest").GetString();
        Assert.Equal(ModelManifest.Verify(folder).Digest, digest);

        // A version whose files do not match its manifest: refused, and the running version keeps answering.
        File.AppendAllText(Path.Combine(folder, "vocab.txt"), "extra\n");
        Assert.Contains("keeps serving", await AdminAsync(running, "reload", HttpStatusCode.UnprocessableEntity), StringComparison.Ordinal);
        Assert.Equal(FirstScore(second), FirstScore((await RerankAsync(running)).Body));
    }

    [Fact]
    public async Task A_reload_turns_an_encoder_into_a_generative_model_and_back_and_a_broken_one_leaves_the_encoder_serving()
    {
        var folder = _root.Combine("switching");
        new SyntheticCrossEncoder(Vocabulary.Length).WriteFolder(folder, Vocabulary, maxPositions: 32);
        await using var running = await RunningAppliance.StartAsync(
            $"--Appliance:DataFolder={_root.Combine("data-switch")}", "--Appliance:BuiltInEmbeddings=false",
            $"--Models:reranker:Path={folder}", "--Models:reranker:IntraOpThreads=1", "--Logging:LogLevel:Default=Critical");
        await running.WaitUntilReadyAsync();
        async Task<HttpStatusCode> ChatAsync()
        {
            using var response = await running.Http.PostAsJsonAsync("/v1/chat/completions", new { model = "reranker", messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 2 });
            return response.StatusCode;
        }

        // A generative folder whose files do not match its manifest: refused, the encoder keeps serving.
        Directory.Delete(folder, recursive: true);
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, folder);
        File.AppendAllText(Path.Combine(folder, "genai_config.json"), " ");
        Assert.Contains("keeps serving", await AdminAsync(running, "reload", HttpStatusCode.UnprocessableEntity), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await RerankAsync(running)).Status);
        Assert.Equal("rerank", (await running.Http.GetFromJsonAsync<JsonElement>("/v1/models/reranker")).GetProperty("kind").GetString());

        // A sound generative folder: the id now chats, and reranking with it is refused as with any chat model.
        Directory.Delete(folder, recursive: true);
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, folder);
        await AdminAsync(running, "reload");
        Assert.Equal(HttpStatusCode.OK, await ChatAsync());
        Assert.Equal(HttpStatusCode.BadRequest, (await RerankAsync(running)).Status);
        Assert.Equal("chat", (await running.Http.GetFromJsonAsync<JsonElement>("/v1/models/reranker")).GetProperty("kind").GetString());

        // And back: a cross-encoder again.
        Directory.Delete(folder, recursive: true);
        new SyntheticCrossEncoder(Vocabulary.Length).WriteFolder(folder, Vocabulary, maxPositions: 32);
        await AdminAsync(running, "reload");
        Assert.Equal(HttpStatusCode.OK, (await RerankAsync(running)).Status);
        Assert.Equal(HttpStatusCode.BadRequest, await ChatAsync());
    }

    [Fact]
    public async Task An_encoder_declared_for_a_gpu_fails_its_load_saying_it_runs_on_the_cpu_and_the_node_serves_the_rest()
    {
        var folder = _root.Combine("gpu-reranker");
        new SyntheticCrossEncoder(Vocabulary.Length).WriteFolder(folder, Vocabulary, maxPositions: 32);
        var chat = _root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, chat);
        await using var running = await RunningAppliance.StartAsync(
            $"--Appliance:DataFolder={_root.Combine("data-gpu")}", "--Appliance:BuiltInEmbeddings=false",
            $"--Models:reranker:Path={folder}", "--Models:reranker:Device=gpu",
            $"--Models:tiny:Path={chat}", "--Models:tiny:IntraOpThreads=1", "--Logging:LogLevel:Default=Critical");
        await running.WaitUntilReadyAsync();

        var model = await running.Http.GetFromJsonAsync<JsonElement>("/v1/models/reranker");
        Assert.Equal(("failed", "rerank"), (model.GetProperty("state").GetString(), model.GetProperty("kind").GetString()));
        var (status, _) = await RerankAsync(running);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        var pool = await running.Http.GetFromJsonAsync<JsonElement>("/admin/pool");
        var entry = pool.GetProperty("models").EnumerateArray().Single(m => m.GetProperty("id").GetString() == "reranker");
        Assert.Contains("runs on the node's CPU", entry.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    public void Dispose() => _root.Dispose();
}
