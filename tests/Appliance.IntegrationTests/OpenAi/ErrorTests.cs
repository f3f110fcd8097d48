using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Appliance.Api.OpenAi;
using Microsoft.Extensions.DependencyInjection;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>Bad input gets OpenAI's error object with the right status and param; nothing is a 500.</summary>
[Collection(ApplianceServerCollection.Name)]
public sealed class ErrorTests(ApplianceServer server)
{
    public static TheoryData<string, int, string?, string> BadBodies => new()
    {
        { "{not json", 400, null, "invalid_json" },
        { "[1,2]", 400, null, "invalid_json" },
        { """{"model":"tiny","messages":[{"role":"user","content":"\ud800"}]}""", 400, null, "invalid_json" },
        { """{"messages":[{"role":"user","content":"x"}]}""", 400, "model", "missing_required_parameter" },
        { """{"model":"tiny"}""", 400, "messages", "missing_required_parameter" },
        { """{"model":"tiny","messages":[]}""", 400, "messages", "empty_array" },
        { """{"model":"tiny","messages":"hello"}""", 400, "messages", "invalid_type" },
        { """{"model":"tiny","messages":[{"role":"wizard","content":"x"}]}""", 400, "messages[0].role", "invalid_value" },
        { """{"model":"tiny","messages":[{"role":"user"}]}""", 400, "messages[0].content", "missing_required_parameter" },
        { """{"model":"tiny","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}""", 400, "messages[0].content[0].type", "unsupported_parameter" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"temperature":"hot"}""", 400, "temperature", "invalid_type" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"temperature":7}""", 400, "temperature", "invalid_value" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"max_tokens":1e30}""", 400, "max_tokens", "invalid_value" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"max_tokens":2.5}""", 400, "max_tokens", "invalid_type" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"n":9}""", 400, "n", "invalid_value" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]}""", 400, "tools[0].function", "missing_required_parameter" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search"}]}""", 400, "tools[0].type", "unsupported_parameter" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"tool_choice":"auto"}""", 400, "tool_choice", "invalid_value" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}""", 400, "tool_choice", "invalid_value" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string","pattern":"(?=x)"}}}}}],"tool_choice":"required"}""", 400, "tools", "unsupported_schema_keyword" },
        { """{"model":"tiny","messages":[{"role":"tool","content":"x"}]}""", 400, "messages[0].tool_call_id", "missing_required_parameter" },
        { """{"model":"tiny","messages":[{"role":"assistant","content":"x","function_call":{"name":"f","arguments":"{}"}}]}""", 400, "messages[0].function_call", "unsupported_parameter" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema"}}""", 400, "response_format.json_schema", "missing_required_parameter" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"response_format":{"type":"xml"}}""", 400, "response_format.type", "invalid_value" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"a b","schema":{}}}}""", 400, "response_format.json_schema.name", "invalid_value" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"type":"string","pattern":"(?!a)b"}}}}""", 400, "response_format.json_schema.schema", "unsupported_schema_keyword" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"n","strict":true,"schema":{"type":"object","properties":{"a":{"type":"string"}}}}}}""", 400, "response_format.json_schema.schema", "unsupported_schema_keyword" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"},"ignore_eos":true}""", 400, "ignore_eos", "invalid_value" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"},"stop":["\n\n"]}""", 400, "stop", "invalid_value" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"frobnicate":1}""", 400, "frobnicate", "unknown_parameter" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}""", 400, "stream_options", "invalid_value" },
        { """{"model":"tiny","messages":[{"role":"user","content":"x"}],"max_tokens":2100}""", 400, "messages", "context_length_exceeded" },
        { """{"model":"nope","messages":[{"role":"user","content":"x"}]}""", 404, "model", "model_not_found" },
    };

    [Theory]
    [MemberData(nameof(BadBodies))]
    public async Task Bad_chat_requests_get_openai_errors(string body, int status, string? param, string code)
    {
        using var response = await server.Http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, new MediaTypeHeaderValue("application/json")));
        var error = await Error(response, status);
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
    }

    /// <summary>
    /// Text that decodes to no string (an escaped lone surrogate) or a key given twice, in parts that are only read
    /// later (a tool's schema when the prompt is rendered, earlier calls' arguments), and a field of the wrong type.
    /// </summary>
    public static TheoryData<string, string> UnreadableBodies => new()
    {
        { "/v1/chat/completions", """{"model":"tiny","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string","description":"\ud800"}}}}}]}""" },
        { "/v1/chat/completions", """{"model":"tiny","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":\"\\ud800\"}"}}]},{"role":"tool","tool_call_id":"c","content":"y"}]}""" },
        { "/v1/chat/completions", """{"model":"tiny","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"type":"object","properties":{"\ud800":{"type":"string"}}}}}}""" },
        { "/v1/chat/completions", """{"model":"tiny","model":"tiny","messages":[{"role":"user","content":"x"}]}""" },
        { "/v1/messages", """{"model":"tiny","max_tokens":5,"messages":[{"role":5,"content":"x"}]}""" },
        { "/v1/messages", """{"model":"tiny","max_tokens":5,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"a":"\ud800"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"y"}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}]}""" },
        { "/v1/responses", """{"model":"tiny","input":"x","tools":[{"type":"function","name":"f","name":"g","parameters":{"type":"object"}}]}""" },
        { "/v1/responses", """{"model":"tiny","input":"x","text":{"format":{"type":"json_schema","name":"a","name":"b","schema":{}}}}""" },
        { "/v1/responses", """{"model":"tiny","input":[{"type":"function_call","call_id":"c","name":"f","arguments":"{\"a\":\"\\ud800\"}"},{"type":"function_call_output","call_id":"c","output":"y"}],"tools":[{"type":"function","name":"f","parameters":{"type":"object"}}]}""" },
    };

    [Theory]
    [MemberData(nameof(UnreadableBodies))]
    public async Task Unreadable_text_duplicate_keys_and_wrong_types_are_400s_on_every_dialect(string path, string body)
    {
        using var response = await server.Http.PostAsync(path, new StringContent(body, Encoding.UTF8, new MediaTypeHeaderValue("application/json")));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode}: {text}");
        Assert.False(string.IsNullOrEmpty(JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("message").GetString()));
    }

    [Fact]
    public async Task A_models_earlier_call_with_a_key_written_twice_is_sent_back_without_complaint()
    {
        // A small model may write {"q":"a","q":"b"}; the client returns the arguments as it got them.
        var body = """{"model":"tiny","max_tokens":2,"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"q\":\"a\",\"q\":\"b\"}"}}]},{"role":"tool","tool_call_id":"c","content":"y"}]}""";
        using var response = await server.Http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, new MediaTypeHeaderValue("application/json")));
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_request_whose_own_output_failed_is_no_invitation_to_retry()
    {
        var failed = GenerationResponder.EngineFailure(new ChoiceDelta(0, null, new Appliance.Engine.RequestFailedException("x", new InvalidOperationException("a grammar bug"))));
        var restarting = GenerationResponder.EngineFailure(new ChoiceDelta(0, null, new Appliance.Engine.EngineFailedException("y", 2, new InvalidOperationException("z"))));

        Assert.Equal((500, "request_failed"), (failed.Status, failed.Code));
        Assert.Contains("a grammar bug", failed.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("retry", failed.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal((503, "engine_error"), (restarting.Status, restarting.Code)); // the engine restarts: retrying is right

        // The SDKs retry every 5xx twice (three generations, charged and audited) unless told not to.
        Assert.Equal("false", await RetryHeaderAsync(failed));
        Assert.Null(await RetryHeaderAsync(restarting));
        Assert.Equal("false", await RetryHeaderAsync(new OpenAiError(500, "The model's chat template failed: x", "server_error", null, "chat_template_error")));
    }

    private static async Task<string?> RetryHeaderAsync(OpenAiError error)
    {
        var http = new Microsoft.AspNetCore.Http.DefaultHttpContext { RequestServices = new ServiceCollection().AddLogging().BuildServiceProvider() };
        http.Request.Path = "/v1/chat/completions";
        http.Response.Body = new MemoryStream();
        await error.WriteAsync(http);
        Assert.Equal(error.Status, http.Response.StatusCode);
        return http.Response.Headers.TryGetValue("x-should-retry", out var value) ? value.ToString() : null;
    }

    [Fact]
    public async Task What_real_clients_send_back_and_alongside_is_accepted()
    {
        // openai-python's message.model_dump() echoes nulls and annotations; a call cut short by max_tokens comes back
        // with the arguments as far as they got; SDK and AI SDK providers pass OpenAI's caching and length hints.
        using var response = await server.Http.PostAsync("/v1/chat/completions", new StringContent("""
            {"model":"tiny","stream":true,"stream_options":{"include_usage":true,"include_obfuscation":false},
             "prompt_cache_key":"conversation-7","prompt_cache_retention":"24h","safety_identifier":"user-hash","verbosity":"low",
             "messages":[{"role":"user","content":"Weather in Paris?"},
               {"role":"assistant","content":null,"refusal":null,"function_call":null,"audio":null,"annotations":[],
                "tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\": \"Par"}}]},
               {"role":"tool","tool_call_id":"call_1","content":"sunny"},
               {"role":"user","content":"Thanks"}]}
            """, Encoding.UTF8, "application/json"));
        var body = await response.Content.ReadAsStringAsync();

        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_utf8_is_a_400()
    {
        var bytes = Encoding.UTF8.GetBytes("""{"model":"tiny","messages":[{"role":"user","content":"__"}]}""");
        var at = Array.IndexOf(bytes, (byte)'_');
        bytes[at] = 0xC3;
        bytes[at + 1] = 0x28; // a lead byte followed by a non-continuation byte
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await server.Http.PostAsync("/v1/chat/completions", content);
        Assert.Equal("invalid_json", (await Error(response, 400)).GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_body_over_the_limit_is_413()
    {
        var body = $$"""{"model":"tiny","messages":[{"role":"user","content":"{{new string('a', (int)ApplianceServer.BodyLimit)}}"}]}""";
        using var response = await server.Http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal("request_too_large", (await Error(response, 413)).GetProperty("code").GetString());
    }

    [Fact]
    public async Task An_unknown_v1_route_is_an_openai_404()
    {
        using var response = await server.Http.GetAsync("/v1/assistants");
        Assert.Equal("unknown_url", (await Error(response, 404)).GetProperty("code").GetString());
    }

    private static async Task<JsonElement> Error(HttpResponseMessage response, int status)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == status, $"expected {status}, got {(int)response.StatusCode}: {text}");
        var json = JsonDocument.Parse(text).RootElement;
        var error = json.GetProperty("error");
        Assert.True(error.TryGetProperty("type", out _));
        Assert.True(error.TryGetProperty("param", out _));
        return error.Clone();
    }
}
