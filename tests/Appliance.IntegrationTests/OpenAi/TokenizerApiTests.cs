using System.Net;
using System.Text;
using System.Text.Json;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>
/// vLLM's tokenizer endpoints, at the root where lm-evaluation-harness's remote tokenizer calls them (no model named)
/// and under /v1: the model's own tokenizer, as the completions count it, and an audit record that charges nothing.
/// </summary>
[Collection(ApplianceServerCollection.Name)]
public sealed class TokenizerApiTests(ApplianceServer server)
{
    [Fact]
    public async Task A_remote_tokenizer_reads_the_settings_then_round_trips_text_as_the_completions_count_it()
    {
        using var info = JsonDocument.Parse(await server.Http.GetStringAsync("/tokenizer_info"));
        var settings = info.RootElement;
        Assert.Equal("tiny", settings.GetProperty("model").GetString());
        Assert.Equal("<|endoftext|>", settings.GetProperty("eos_token").GetString()); // the harness probes for this key
        Assert.Equal(2048, settings.GetProperty("model_max_length").GetInt32());

        const string Text = "Once upon a time, a tokenizer";
        var plain = await Post("/tokenize", JsonSerializer.Serialize(new { prompt = Text, add_special_tokens = false, return_token_strs = true }));
        var tokens = plain.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()).ToArray();
        Assert.Equal(tokens.Length, plain.GetProperty("count").GetInt32());
        Assert.Equal(2048, plain.GetProperty("max_model_len").GetInt32());
        Assert.Equal(Text, string.Concat(plain.GetProperty("token_strs").EnumerateArray().Select(t => t.GetString())));
        Assert.Equal(Text, (await Post("/detokenize", JsonSerializer.Serialize(new { tokens }))).GetProperty("prompt").GetString());

        // With the model's special tokens (the default), the count is what a completion of the text is charged.
        var counted = await Post("/v1/tokenize", JsonSerializer.Serialize(new { model = "tiny-alias", prompt = Text }));
        var completion = await Post("/v1/completions", JsonSerializer.Serialize(new { model = "tiny", prompt = Text, max_tokens = 1 }));
        Assert.Equal(completion.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), counted.GetProperty("count").GetInt32());
        Assert.Equal(JsonValueKind.Null, counted.GetProperty("token_strs").ValueKind);
    }

    [Theory]
    [InlineData("""[{"role":"system","content":"Be brief."},{"role":"user","content":"What is a tokenizer?"}]""", null)]
    [InlineData("""[{"role":"user","content":"Where is order 7?"}]""", """[{"type":"function","function":{"name":"lookup","parameters":{"type":"object","properties":{"id":{"type":"integer"}}}}}]""")]
    public async Task A_conversation_counts_what_a_chat_completion_of_it_is_charged(string messages, string? tools)
    {
        var conversation = "{\"model\":\"tiny\",\"messages\":" + messages + (tools is null ? string.Empty : ",\"tools\":" + tools);

        var counted = await Post("/tokenize", conversation + "}");
        var chat = await Post("/v1/chat/completions", conversation + ",\"max_tokens\":1}");

        Assert.Equal(chat.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), counted.GetProperty("count").GetInt32());
        Assert.Equal(counted.GetProperty("count").GetInt32(), counted.GetProperty("tokens").GetArrayLength());
    }

    [Fact]
    public async Task A_responses_input_count_is_what_a_response_to_the_same_body_is_charged()
    {
        const string Body = """{"model":"tiny","instructions":"Be brief.","input":[{"role":"user","content":"What is a tokenizer?"}],"tools":[{"type":"function","name":"lookup","parameters":{"type":"object","properties":{"id":{"type":"integer"}}}}]""";

        var counted = await Post("/v1/responses/input_tokens", Body + "}");
        var withoutModel = await Post("/v1/responses/input_tokens", Body.Replace("\"model\":\"tiny\",", string.Empty, StringComparison.Ordinal) + "}");
        var response = await Post("/v1/responses", Body + ",\"max_output_tokens\":16}");

        Assert.Equal("response.input_tokens", counted.GetProperty("object").GetString());
        Assert.Equal(response.GetProperty("usage").GetProperty("input_tokens").GetInt32(), counted.GetProperty("input_tokens").GetInt32());
        Assert.Equal(counted.GetProperty("input_tokens").GetInt32(), withoutModel.GetProperty("input_tokens").GetInt32());
    }

    [Fact]
    public async Task Tokenizing_and_counting_are_audited_as_tokenized_naming_the_model_and_charge_no_usage()
    {
        var before = await TinyUsage();
        using var tokenized = await server.Http.PostAsync("/tokenize", Json("""{"prompt":"audit me"}"""));
        using var counted = await server.Http.PostAsync("/v1/messages/count_tokens", Json("""{"model":"tiny","messages":[{"role":"user","content":"count me"}]}"""));
        Assert.Equal(HttpStatusCode.OK, tokenized.StatusCode);
        Assert.Equal(HttpStatusCode.OK, counted.StatusCode);

        foreach (var (response, detail) in new[] { (tokenized, "tokenized "), (counted, "counted ") })
        {
            var record = await TokenizedRecord(response.Headers.GetValues("X-Request-Id").Single());
            Assert.StartsWith(detail, record.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.Equal("tiny", record.GetProperty("model").GetString()); // who used which model's tokenizer stays findable
            Assert.Equal(JsonValueKind.Null, record.GetProperty("promptTokens").ValueKind);
        }

        Assert.Equal(before, await TinyUsage()); // neither is a request of the model, nor tokens of it
    }

    [Theory]
    [InlineData("/tokenize", """{"model":"tiny","messages":[{"role":"user","content":"x"}],"add_generation_prompt":false}""", 400, "add_generation_prompt")]
    [InlineData("/tokenize", """{"model":"tiny","messages":[{"role":"user","content":"x"}],"prompt":"x"}""", 400, "prompt")]
    [InlineData("/tokenize", """{"model":"tiny"}""", 400, "prompt")]
    [InlineData("/tokenize", """{"model":"tiny","prompt":"x","truncate":true}""", 400, "truncate")]
    [InlineData("/detokenize", """{"model":"tiny","tokens":[1,99999999]}""", 400, "tokens")]
    [InlineData("/detokenize", """{"model":"tiny","tokens":[-1]}""", 400, "tokens")]
    [InlineData("/v1/detokenize", """{"model":"nope","tokens":[1]}""", 404, "model")]
    public async Task Bad_requests_are_answered_in_OpenAIs_shape_naming_the_field(string path, string body, int status, string param)
    {
        using var response = await server.Http.PostAsync(path, Json(body));

        Assert.Equal(status, (int)response.StatusCode);
        using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(param, error.RootElement.GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task The_root_paths_need_the_same_credential_and_refuse_in_OpenAIs_shape()
    {
        using var anonymous = new HttpClient { BaseAddress = server.Http.BaseAddress };

        using var response = await anonymous.PostAsync("/tokenize", Json("""{"prompt":"x"}"""));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("invalid_api_key", error.RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Theory]
    [InlineData("GET", "/tokenize", "POST")]
    [InlineData("POST", "/tokenizer_info", "GET")]
    public async Task A_wrong_method_at_the_root_is_a_405_in_OpenAIs_shape(string method, string path, string allowed)
    {
        using var response = await server.Http.SendAsync(new HttpRequestMessage(new HttpMethod(method), path) { Content = Json("{}") });

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.Equal(allowed, string.Join(",", response.Content.Headers.Allow));
        using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("method_not_allowed", error.RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task With_several_models_and_none_named_the_answer_lists_them()
    {
        using var root = new TempFolder("tokenizer-models");
        var folder = root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, folder);
        await using var running = await RunningAppliance.StartAsync(
            $"--Models:first:Path={folder}", $"--Models:second:Path={folder}", "--Appliance:BuiltInEmbeddings=false",
            $"--Appliance:DataFolder={root.Combine("data")}", "--Logging:LogLevel:Default=None");
        await running.WaitUntilReadyAsync();

        using var response = await running.Http.PostAsync("/tokenize", Json("""{"prompt":"x"}"""));
        using var named = await running.Http.PostAsync("/tokenize", Json("""{"prompt":"x","model":"second"}"""));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("(first, second)", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, named.StatusCode);
    }

    private async Task<long> TinyUsage()
    {
        using var report = JsonDocument.Parse(await server.Http.GetStringAsync("/admin/usage?by=model"));
        return report.RootElement.GetProperty("data").EnumerateArray().Where(r => r.GetProperty("key").GetString() == "tiny")
            .Sum(r => r.GetProperty("requests").GetInt64() * 1_000_000 + r.GetProperty("promptTokens").GetInt64());
    }

    private async Task<JsonElement> TokenizedRecord(string requestId)
    {
        for (var attempt = 0; ; attempt++)
        {
            using var events = JsonDocument.Parse(await server.Http.GetStringAsync("/audit/events?kind=request.tokenized&limit=1000"));
            foreach (var record in events.RootElement.GetProperty("data").EnumerateArray())
            {
                if (record.GetProperty("requestId").GetString() == requestId)
                {
                    return record.Clone();
                }
            }

            Assert.True(attempt < 200, $"no request.tokenized record for request {requestId}");
            await Task.Delay(50);
        }
    }

    private async Task<JsonElement> Post(string path, string body)
    {
        using var response = await server.Http.PostAsync(path, Json(body));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");
}
