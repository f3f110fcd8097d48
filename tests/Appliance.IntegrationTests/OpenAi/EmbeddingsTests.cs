using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Embeddings;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>/v1/embeddings with the real pretrained all-MiniLM-L6-v2, through the OpenAI SDK and raw HTTP.</summary>
[Collection(ApplianceServerCollection.Name)]
public sealed class EmbeddingsTests(ApplianceServer server)
{
    private const string Model = "all-minilm-l6-v2";

    [Fact]
    public async Task Similar_texts_score_closer_than_unrelated_ones()
    {
        var client = new EmbeddingClient(Model, new ApiKeyCredential(server.Token), new OpenAIClientOptions { Endpoint = server.ApiBase });
        OpenAIEmbeddingCollection embeddings = await client.GenerateEmbeddingsAsync(["The cat sleeps on the sofa.", "A kitten is napping on the couch.", "Stock markets fell sharply today."]);

        var vectors = embeddings.Select(e => e.ToFloats().ToArray()).ToList();
        Assert.All(vectors, v => Assert.Equal(384, v.Length));
        Assert.All(vectors, v => Assert.Equal(1.0, Math.Sqrt(v.Sum(x => (double)x * x)), 3));
        var similar = Cosine(vectors[0], vectors[1]);
        var unrelated = Cosine(vectors[0], vectors[2]);
        Assert.True(similar > unrelated + 0.3, $"cosine(cat, kitten) {similar:F3} vs cosine(cat, stocks) {unrelated:F3}");
    }

    [Fact]
    public void The_packaged_model_is_unpacked_beside_the_models_folder_that_the_ansible_role_owns()
    {
        // <data>/models is root's on an installed node: the service could not unpack a model there after the role ran.
        Assert.True(File.Exists(Path.Combine(server.DataFolder, "built-in", Model, "manifest.json")));
        Assert.False(Directory.Exists(Path.Combine(server.DataFolder, "models")));
    }

    [Fact]
    public async Task Float_and_base64_encodings_carry_the_same_vector()
    {
        var asFloats = await Post("""{"model":"all-minilm-l6-v2","input":"hello world"}""");
        var asBase64 = await Post("""{"model":"all-minilm-l6-v2","input":["hello world"],"encoding_format":"base64"}""");

        Assert.Equal("list", asFloats.GetProperty("object").GetString());
        var floats = asFloats.GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        var bytes = Convert.FromBase64String(asBase64.GetProperty("data")[0].GetProperty("embedding").GetString()!);
        var decoded = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, decoded, 0, bytes.Length);
        Assert.Equal(floats, decoded);
        Assert.Equal(4, asFloats.GetProperty("usage").GetProperty("prompt_tokens").GetInt32()); // [CLS] hello world [SEP]
    }

    [Theory]
    [InlineData("""{"model":"all-minilm-l6-v2","input":[]}""", 400, "input")]
    [InlineData("""{"model":"all-minilm-l6-v2","input":[1,-2,3]}""", 400, "input")]
    [InlineData("""{"model":"all-minilm-l6-v2","input":[[1,2],[100257]]}""", 400, "input[1]")] // a special token: no text
    [InlineData("""{"model":"all-minilm-l6-v2","input":[[1,2],[]]}""", 400, "input[1]")]
    [InlineData("""{"model":"all-minilm-l6-v2","input":"x","encoding_format":"int8"}""", 400, "encoding_format")]
    [InlineData("""{"model":"all-minilm-l6-v2","input":"x","dimensions":128}""", 400, "dimensions")]
    [InlineData("""{"model":"tiny","input":"x"}""", 400, "model")]
    [InlineData("""{"model":"nope","input":"x"}""", 404, "model")]
    public async Task Bad_embedding_requests_get_openai_errors(string body, int status, string param)
    {
        using var response = await server.Http.PostAsync("/v1/embeddings", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal((HttpStatusCode)status, response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal(param, error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task OpenAI_token_ids_as_LangChain_sends_them_embed_as_their_text()
    {
        // LangChain's OpenAIEmbeddings cuts texts with tiktoken's cl100k_base and sends the ids.
        var cl100k = Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForEncoding("cl100k_base");
        string[] texts = ["The cat sleeps on the sofa.", "Stock markets fell sharply today."];
        var ids = texts.Select(t => cl100k.EncodeToIds(t)).ToArray();

        var fromIds = await Post(JsonSerializer.Serialize(new { model = Model, input = ids }));
        var fromText = await Post(JsonSerializer.Serialize(new { model = Model, input = texts }));
        var single = await Post(JsonSerializer.Serialize(new { model = Model, input = ids[1] })); // one input as a flat list

        Assert.Equal(Vectors(fromText), Vectors(fromIds));
        Assert.True(Cosine(Vectors(fromText)[1], Vectors(single)[0]) > 0.9999); // padded beside a longer input, or not
        Assert.Equal(fromText.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), fromIds.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task A_large_batch_is_embedded_in_runs_and_each_vector_stays_at_its_input_s_place()
    {
        // More inputs than one model run takes, of many lengths, so that the runs sort them by length.
        var texts = Enumerable.Range(0, 75).Select(i => string.Join(' ', Enumerable.Repeat($"word{i % 7}", 1 + (i * 37 % 60)))).ToArray();
        var batch = Vectors(await Post(JsonSerializer.Serialize(new { model = Model, input = texts })));

        Assert.Equal(texts.Length, batch.Count);
        foreach (var i in new[] { 0, 31, 32, 50, 74 })
        {
            var alone = Vectors(await Post(JsonSerializer.Serialize(new { model = Model, input = texts[i] })))[0];
            Assert.True(Cosine(batch[i], alone) > 0.9999, $"input {i}: cosine {Cosine(batch[i], alone)}"); // padding changes the last bits only
        }
    }

    [Fact]
    public async Task Accents_are_stripped_as_the_uncased_model_s_own_tokenizer_strips_them()
    {
        // transformers' BertTokenizer for an uncased model lowercases and strips accents: "Café" is "cafe".
        var vectors = Vectors(await Post(JsonSerializer.Serialize(new { model = Model, input = new[] { "Café naïve résumé", "cafe naive resume" } })));
        Assert.Equal(vectors[1], vectors[0]);
    }

    [Fact]
    public async Task An_input_longer_than_the_model_takes_is_refused()
    {
        var text = string.Join(' ', Enumerable.Repeat("word", 300));
        using var response = await server.Http.PostAsync("/v1/embeddings", new StringContent(JsonSerializer.Serialize(new { model = Model, input = text }), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("context_length_exceeded", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private async Task<JsonElement> Post(string body)
    {
        using var response = await server.Http.PostAsync("/v1/embeddings", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static double Cosine(float[] a, float[] b) => a.Zip(b, (x, y) => (double)x * y).Sum();

    private static List<float[]> Vectors(JsonElement answer) =>
        [.. answer.GetProperty("data").EnumerateArray().OrderBy(d => d.GetProperty("index").GetInt32())
            .Select(d => d.GetProperty("embedding").EnumerateArray().Select(e => e.GetSingle()).ToArray())];
}
