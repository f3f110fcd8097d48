using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Appliance.Tests.Common;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Tokenizers;

namespace Appliance.IntegrationTests.Encoders;

/// <summary>
/// Embedding models and cross-encoders an administrator declares, served on /v1/embeddings and /v1/rerank by the real
/// host: vectors pooled as the folder says, scores as the model computes them for the pairs built here independently
/// (Microsoft.ML.Tokenizers' BertTokenizer and the synthetic model's own arithmetic), documents ordered, cut and
/// charged, and the errors a client gets for the wrong kind of model or a request the endpoint cannot honour.
/// </summary>
public sealed class EncoderApiTests(EncoderAppliance server) : IClassFixture<EncoderAppliance>
{
    private static readonly string[] Documents =
    [
        "The cat sat on the mat.",
        "Paris is the capital of France.",
        "Quarterly revenue grew by four percent.",
        "A kitten naps in the sun on a warm afternoon.",
    ];

    private BertTokenizer Tokenizer => BertTokenizer.Create(Path.Combine(server.MiniLm, "vocab.txt"), new BertOptions { LowerCaseBeforeTokenization = true, RemoveNonSpacingMarks = true });

    private async Task<JsonElement> PostAsync(string path, object body, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var response = await server.Running.Http.PostAsJsonAsync(path, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private async Task<float[][]> EmbedAsync(string model, params string[] input)
    {
        var answer = await PostAsync("/v1/embeddings", new { model, input });
        return [.. answer.GetProperty("data").EnumerateArray().Select(d => d.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray())];
    }

    /// <summary>The cross-encoder's score for a pair as the test builds it: [CLS] query [SEP] document [SEP], types 0 then 1.</summary>
    private double ReferenceScore(string query, string document, int? documentTokens = null)
    {
        var q = Tokenizer.EncodeToIds(query, addSpecialTokens: false);
        var d = Tokenizer.EncodeToIds(document, addSpecialTokens: false).Take(documentTokens ?? int.MaxValue).ToList();
        int[] ids = [Tokenizer.ClassificationTokenId, .. q, Tokenizer.SeparatorTokenId, .. d, Tokenizer.SeparatorTokenId];
        int[] types = [.. Enumerable.Repeat(0, q.Count + 2), .. Enumerable.Repeat(1, d.Count + 1)];
        return 1.0 / (1.0 + Math.Exp(-server.CrossEncoder.Logit(ids, types)));
    }

    [Fact]
    public async Task The_models_list_says_which_endpoint_serves_each_kind_and_its_length()
    {
        var models = (await server.Running.Http.GetFromJsonAsync<JsonElement>("/v1/models")).GetProperty("data").EnumerateArray()
            .ToDictionary(m => m.GetProperty("id").GetString()!, m => (m.GetProperty("kind").GetString(), m.GetProperty("context_length").GetInt32()));

        Assert.Equal(("rerank", 64), models["reranker"]);
        Assert.Equal(("embedding", 128), models["bge-style"]);
        Assert.Equal(("embedding", 256), models["minilm-mean"]);
        Assert.Equal("chat", models["tiny"].Item1);
    }

    [Fact]
    public async Task A_sentence_transformers_folder_with_mean_pooling_embeds_exactly_as_the_packaged_model()
    {
        string[] texts = ["Where is the nearest hospital?", "Café au lait, s'il vous plaît."];

        var declared = await EmbedAsync("minilm-mean", texts);
        var packaged = await EmbedAsync(EncoderAppliance.BuiltIn, texts);

        for (var i = 0; i < texts.Length; i++)
        {
            Assert.Equal(packaged[i], declared[i]);
        }
    }

    [Fact]
    public async Task Cls_pooling_returns_the_first_tokens_state_normalised_read_through_a_wordpiece_tokenizer_json()
    {
        const string text = "Sovereign clouds keep data at home.";
        var served = (await EmbedAsync("bge-style", text))[0];

        // The reference: the model's token states computed here, the [CLS] row taken and scaled to length 1.
        var ids = Tokenizer.EncodeToIds(text, addSpecialTokens: true).Select(i => (long)i).ToArray();
        using var session = new InferenceSession(Path.Combine(server.MiniLm, "model.onnx"));
        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, [1, ids.Length]);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(ids.Select(_ => 1L).ToArray(), [1, ids.Length]);
        using var typesValue = OrtValue.CreateTensorValueFromMemory(new long[ids.Length], [1, ids.Length]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["input_ids", "attention_mask", "token_type_ids"], [idsValue, maskValue, typesValue], [session.OutputNames[0]]);
        var cls = outputs[0].GetTensorDataAsSpan<float>()[..served.Length].ToArray();
        var norm = Math.Sqrt(cls.Sum(v => (double)v * v));

        Assert.Equal(384, served.Length);
        for (var i = 0; i < served.Length; i++)
        {
            Assert.Equal(cls[i] / norm, served[i], 5);
        }

        var mean = (await EmbedAsync("minilm-mean", text))[0];
        Assert.True(mean.Zip(served).Sum(p => Math.Abs(p.First - p.Second)) > 0.1, "CLS and mean pooling gave the same vector");
    }

    [Fact]
    public async Task An_input_over_the_folders_max_seq_length_is_refused_as_too_long()
    {
        var tooLong = string.Join(' ', Enumerable.Repeat("word", 200));

        var error = await PostAsync("/v1/embeddings", new { model = "bge-style", input = tooLong }, HttpStatusCode.BadRequest);

        Assert.Equal("context_length_exceeded", error.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("128 tokens", error.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_cross_encoder_orders_documents_by_the_models_score_for_each_pair()
    {
        const string query = "Where do cats like to sleep?";

        var answer = await PostAsync("/v1/rerank", new { model = "reranker", query, documents = Documents });

        var expected = Documents.Select((d, i) => (Index: i, Score: ReferenceScore(query, d))).OrderByDescending(r => r.Score).ToList();
        var results = answer.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(expected.Select(r => r.Index), results.Select(r => r.GetProperty("index").GetInt32()));
        foreach (var (result, reference) in results.Zip(expected))
        {
            Assert.Equal(reference.Score, result.GetProperty("relevance_score").GetDouble(), 5);
            Assert.Equal(Documents[reference.Index], result.GetProperty("document").GetProperty("text").GetString());
        }

        Assert.True(expected[0].Score - expected[^1].Score > 1e-3, "the synthetic model scored every pair alike");
        var tokens = Documents.Sum(d => Tokenizer.EncodeToIds(query, addSpecialTokens: false).Count + Tokenizer.EncodeToIds(d, addSpecialTokens: false).Count + 3);
        Assert.Equal(tokens, answer.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        Assert.Equal(tokens, answer.GetProperty("meta").GetProperty("tokens").GetProperty("input_tokens").GetInt32());
        Assert.Equal("reranker", answer.GetProperty("model").GetString());
        Assert.Equal("1", answer.GetProperty("meta").GetProperty("api_version").GetProperty("version").GetString());
    }

    [Fact]
    public async Task Top_n_return_documents_and_document_objects_shape_the_answer_as_cohere_and_jina_clients_read_it()
    {
        const string query = "capital city";
        var objects = Documents.Select(d => new { text = d, source = "wiki" }).ToArray();

        var answer = await PostAsync("/v2/rerank", new { model = "rerank-alias", query, documents = objects, top_n = 2, return_documents = false });

        var results = answer.GetProperty("results").EnumerateArray().ToList();
        var best = Documents.Select((d, i) => (Index: i, Score: ReferenceScore(query, d))).OrderByDescending(r => r.Score).Take(2).Select(r => r.Index);
        Assert.Equal(best, results.Select(r => r.GetProperty("index").GetInt32()));
        Assert.All(results, r => Assert.False(r.TryGetProperty("document", out _)));
        Assert.Equal("rerank-alias", answer.GetProperty("model").GetString());
        Assert.StartsWith("rerank-", answer.GetProperty("id").GetString(), StringComparison.Ordinal);

        Assert.Equal("2", answer.GetProperty("meta").GetProperty("api_version").GetProperty("version").GetString());
        var v2Default = await PostAsync("/v2/rerank", new { model = "reranker", query, documents = Documents });
        Assert.All(v2Default.GetProperty("results").EnumerateArray(), r => Assert.False(r.TryGetProperty("document", out _))); // Cohere v2 returns none

        var root = await PostAsync("/rerank", new { model = "reranker", query, documents = Documents, top_n = 50 });
        Assert.Equal(Documents.Length, root.GetProperty("results").GetArrayLength()); // top_n above the count returns them all
        Assert.All(root.GetProperty("results").EnumerateArray(), r => Assert.True(r.TryGetProperty("document", out _))); // Jina and vLLM return them
    }

    [Fact]
    public async Task Cohere_sdks_v2_and_v1_clients_rerank_through_the_appliance()
    {
        const string query = "Where do cats like to sleep?";
        var expected = Documents.Select((d, i) => (Index: i, Score: ReferenceScore(query, d))).OrderByDescending(r => r.Score).ToList();
        var baseUrl = server.Running.Http.BaseAddress!;

        var v2 = await CohereSdk.RerankAsync(baseUrl, server.Running.Token!, "v2", "reranker", query, Documents, topN: 3);
        var v1 = await CohereSdk.RerankAsync(baseUrl, server.Running.Token!, "v1", "reranker", query, Documents, returnDocuments: true);

        Assert.Equal(expected.Take(3).Select(r => r.Index), v2.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("index").GetInt32()));
        Assert.Equal(expected[0].Score, v2.GetProperty("results")[0].GetProperty("relevanceScore").GetDouble(), 5);
        Assert.Equal(expected.Select(r => r.Index), v1.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("index").GetInt32()));
        Assert.Equal(Documents[expected[0].Index], v1.GetProperty("results")[0].GetProperty("document").GetProperty("text").GetString());

        // An error reaches the SDK as its own error type, with the appliance's status and body.
        var refused = await CohereSdk.RerankAsync(baseUrl, server.Running.Token!, "v2", "tiny", query, Documents);
        Assert.Equal(400, refused.GetProperty("error").GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task A_document_longer_than_the_model_or_max_tokens_per_doc_is_cut_at_its_end()
    {
        const string query = "cats";
        var longDocument = string.Join(' ', Enumerable.Repeat("the kitten sleeps on the warm mat", 30));
        var queryTokens = Tokenizer.EncodeToIds(query, addSpecialTokens: false).Count;

        var cut = await PostAsync("/v1/rerank", new { model = "reranker", query, documents = new[] { longDocument, "dogs" }, max_tokens_per_doc = 5 });
        var whole = await PostAsync("/v1/rerank", new { model = "reranker", query, documents = new[] { longDocument } });

        var cutScore = cut.GetProperty("results").EnumerateArray().Single(r => r.GetProperty("index").GetInt32() == 0).GetProperty("relevance_score").GetDouble();
        Assert.Equal(ReferenceScore(query, longDocument, 5), cutScore, 5);
        // The model takes 64 tokens: the document keeps what the query and three special tokens leave.
        Assert.Equal(ReferenceScore(query, longDocument, 64 - queryTokens - 3), whole.GetProperty("results")[0].GetProperty("relevance_score").GetDouble(), 5);
        Assert.Equal(64, whole.GetProperty("usage").GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task An_embedding_model_reranks_by_the_cosine_of_its_vectors()
    {
        const string query = "Where do cats like to sleep?";
        var vectors = await EmbedAsync(EncoderAppliance.BuiltIn, [query, .. Documents]);

        var answer = await PostAsync("/v1/rerank", new { model = EncoderAppliance.BuiltIn, query, documents = Documents });

        var expected = Documents.Select((_, i) => (Index: i, Score: vectors[0].Zip(vectors[i + 1]).Sum(p => (double)p.First * p.Second))).OrderByDescending(r => r.Score).ToList();
        var results = answer.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(expected.Select(r => r.Index), results.Select(r => r.GetProperty("index").GetInt32()));
        Assert.Equal(expected[0].Score, results[0].GetProperty("relevance_score").GetDouble(), 5);
        Assert.Contains(results[0].GetProperty("index").GetInt32(), new[] { 0, 3 }); // a real model ranks a cat first
    }

    [Theory]
    [InlineData("/v1/rerank", "tiny", "/v1/chat/completions")]
    [InlineData("/v1/embeddings", "reranker", "/v1/rerank")]
    [InlineData("/v1/chat/completions", "reranker", "/v1/rerank")]
    [InlineData("/v1/chat/completions", "bge-style", "/v1/embeddings")]
    public async Task A_model_of_another_kind_is_refused_naming_the_endpoint_that_serves_it(string path, string model, string named)
    {
        object body = path switch
        {
            "/v1/rerank" => new { model, query = "q", documents = new[] { "d" } },
            "/v1/embeddings" => new { model, input = "text" },
            _ => new { model, messages = new[] { new { role = "user", content = "hi" } } },
        };

        var error = (await PostAsync(path, body, HttpStatusCode.BadRequest)).GetProperty("error");

        Assert.Equal("model_not_supported", error.GetProperty("code").GetString());
        Assert.Contains(named, error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"model":"reranker","query":"q","documents":[]}""", "documents", "invalid_value")]
    [InlineData("""{"model":"reranker","query":"q","documents":[3]}""", "documents[0]", "invalid_type")]
    [InlineData("""{"model":"reranker","query":"","documents":["d"]}""", "query", "invalid_value")]
    [InlineData("""{"model":"reranker","documents":["d"]}""", "query", "missing_required_parameter")]
    [InlineData("""{"model":"reranker","query":"q","documents":["d"],"rank_fields":["title"]}""", "rank_fields", "unsupported_parameter")]
    [InlineData("""{"model":"reranker","query":"q","documents":["d"],"top_n":0}""", "top_n", "invalid_value")]
    [InlineData("""{"model":"reranker","query":"q","documents":["d"],"return_text":true}""", "return_text", "unknown_parameter")]
    public async Task A_rerank_request_the_endpoint_cannot_honour_is_a_400_naming_the_field(string body, string param, string code)
    {
        using var response = await server.Running.Http.PostAsync("/v1/rerank", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal((param, code), (error.GetProperty("param").GetString(), error.GetProperty("code").GetString()));
    }

    [Fact]
    public async Task A_query_the_model_cannot_hold_beside_a_document_is_refused_before_anything_runs()
    {
        var query = string.Join(' ', Enumerable.Repeat("cat", 70));

        var error = (await PostAsync("/v1/rerank", new { model = "reranker", query, documents = new[] { "d" } }, HttpStatusCode.BadRequest)).GetProperty("error");

        Assert.Equal(("context_length_exceeded", "query"), (error.GetProperty("code").GetString(), error.GetProperty("param").GetString()));
    }

    [Fact]
    public async Task A_rerank_is_audited_with_the_model_and_the_tokens_it_ran()
    {
        var answer = await PostAsync("/v1/rerank", new { model = "reranker", query = "audit me", documents = new[] { "one", "two" } });
        var tokens = answer.GetProperty("usage").GetProperty("total_tokens").GetInt32();

        using var events = JsonDocument.Parse(await server.Running.Http.GetStringAsync("/audit/events?kind=request.completed&limit=1000"));
        Assert.Contains(events.RootElement.GetProperty("data").EnumerateArray(), r =>
            r.GetProperty("endpoint").GetString() == "/v1/rerank" && r.GetProperty("model").GetString() == "reranker"
            && r.GetProperty("promptTokens").GetInt32() == tokens);
    }
}
