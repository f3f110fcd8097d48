using System.Net;
using System.Text;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>Tool use under chat templates of shapes the shared test model does not have.</summary>
public sealed class ToolTemplateTests : IDisposable
{
    // Renders tools, so the model is prompted in its own format, and spells each call's arguments key by key.
    private const string Template = """
        {%- if tools %}<|tools|>{{ tools | length }}{% endif -%}
        {%- for message in messages -%}
        {%- if message.tool_calls -%}
        {%- for call in message.tool_calls %}<tool_call>{{ call.function.name }}{% for key, value in call.function.arguments.items() %} {{ key }}={{ value }}{% endfor %}</tool_call>{% endfor -%}
        {%- else %}<|{{ message.role }}|>{{ message.content }}{% endif -%}
        {%- endfor -%}
        {%- if add_generation_prompt %}<|assistant|>{% endif -%}
        """;

    private readonly TempFolder _root = new("tool-templates");

    /// <summary>
    /// A tool call cut short by max_tokens comes back in the history with arguments that are not JSON. Templates that
    /// read arguments as a mapping (their keys and values) cannot render it: that is the client's to fix, a 400 naming
    /// the call, not a 500 that reads as the appliance's fault.
    /// </summary>
    [Fact]
    public async Task Arguments_that_are_not_json_under_a_template_that_reads_them_are_a_400_naming_the_call()
    {
        var model = _root.Combine("keyed");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, model);
        File.WriteAllText(Path.Combine(model, "chat_template.jinja"), Template);
        ModelManifest.Create(model);
        await using var running = await RunningAppliance.StartAsync($"--Models:keyed:Path={model}", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=Warning");
        await running.WaitUntilReadyAsync();
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"]));

        const string Conversation = """
            {"model":"keyed","max_tokens":2,"tools":[{"type":"function","function":{"name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
             "messages":[{"role":"user","content":"weather?"},
               {"role":"assistant","content":"","tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":ARGUMENTS}}]},
               {"role":"tool","tool_call_id":"call_1","content":"sunny"}]}
            """;
        using (var whole = await Post(ada, Conversation.Replace("ARGUMENTS", "\"{\\\"city\\\": \\\"Paris\\\"}\"", StringComparison.Ordinal)))
        {
            Assert.True(whole.StatusCode == HttpStatusCode.OK, await whole.Content.ReadAsStringAsync());
        }

        using var cut = await Post(ada, Conversation.Replace("ARGUMENTS", "\"{\\\"city\\\": \\\"Par\"", StringComparison.Ordinal));
        var error = await cut.Content.ReadAsStringAsync();
        Assert.True(cut.StatusCode == HttpStatusCode.BadRequest, error);
        Assert.Contains("invalid_tool_call_arguments", error, StringComparison.Ordinal);
        Assert.Contains("'weather' (call_1)", error, StringComparison.Ordinal);
    }

    /// <summary>
    /// Llama 3 writes a call as a bare JSON object, so beside a JSON response format a call and a JSON answer could not
    /// be told apart (an answer of the call's shape would be read as a call nobody checked): refused by name.
    /// </summary>
    [Fact]
    public async Task Tools_beside_a_json_format_are_refused_for_a_model_that_writes_calls_as_bare_json()
    {
        var model = _root.Combine("bare-json-calls");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, model);
        File.WriteAllText(Path.Combine(model, "chat_template.jinja"), """
            {%- if tools %}Environment: ipython{% endif -%}
            {%- for message in messages %}<|{{ message.role }}|>{{ message.content }}{% endfor -%}
            {%- if add_generation_prompt %}<|assistant|>{% endif -%}
            """);
        ModelManifest.Create(model);
        await using var running = await RunningAppliance.StartAsync($"--Models:llama:Path={model}", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=Warning");
        await running.WaitUntilReadyAsync();
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"]));

        const string Request = """
            {"model":"llama","max_tokens":8,"messages":[{"role":"user","content":"weather?"}],"response_format":{"type":"json_object"},
             "tools":[{"type":"function","function":{"name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]CHOICE}
            """;
        using var refused = await Post(ada, Request.Replace("CHOICE", "", StringComparison.Ordinal));
        var error = await refused.Content.ReadAsStringAsync();
        Assert.True(refused.StatusCode == HttpStatusCode.BadRequest && error.Contains("plain JSON objects", StringComparison.Ordinal), error);
        using (var responses = await ada.PostAsync("/v1/responses", new StringContent("""
            {"model":"llama","max_output_tokens":8,"input":"weather?","text":{"format":{"type":"json_object"}},
             "tools":[{"type":"function","name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]}
            """, Encoding.UTF8, "application/json")))
        {
            var text = await responses.Content.ReadAsStringAsync();
            Assert.True(responses.StatusCode == HttpStatusCode.BadRequest && text.Contains("\"param\":\"text.format\"", StringComparison.Ordinal), text);
        }

        // A strict schema of an object without "name" can never read as a call: the answer is either.
        const string Strict = ""","response_format":{"type":"json_schema","json_schema":{"name":"city","strict":true,"schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}}}""";
        using var either = await Post(ada, Request.Replace(",\"response_format\":{\"type\":\"json_object\"}", "", StringComparison.Ordinal).Replace("CHOICE", Strict, StringComparison.Ordinal));
        Assert.True(either.StatusCode == HttpStatusCode.OK, await either.Content.ReadAsStringAsync());
        // A forced call needs no JSON answer beside it: that still works.
        using var forced = await Post(ada, Request.Replace("CHOICE", ",\"tool_choice\":\"required\"", StringComparison.Ordinal));
        Assert.True(forced.StatusCode == HttpStatusCode.OK, await forced.Content.ReadAsStringAsync());
    }

    private static Task<HttpResponseMessage> Post(HttpClient client, string body) =>
        client.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));

    public void Dispose() => _root.Dispose();
}
