using System.Text.Json.Nodes;
using Appliance.Prompting;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Tokenization;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Tokenization;

/// <summary>
/// Where real model folders keep their templates: recent transformers versions save chat_template.jinja (and
/// additional_chat_templates/) beside tokenizer_config.json, some models list named templates in it. Each must be
/// found, or the model would silently be prompted in ChatML.
/// </summary>
public sealed class ChatTemplateLoaderTests : IDisposable
{
    private static readonly ChatMessage[] Hello = [new("user", "Hello")];
    private static readonly ToolDefinition[] Weather = [new("get_weather", "Weather of a city", """{"type":"object","properties":{"city":{"type":"string"}}}""")];
    private readonly TempFolder _folder = new("chat-template-loader");

    [Fact]
    public void A_chat_template_jinja_file_is_the_template_and_wins_over_the_config()
    {
        Config(new JsonObject { ["chat_template"] = "config:{{ messages[0].content }}", ["bos_token"] = "<s>" });
        File.WriteAllText(_folder.Combine("chat_template.jinja"), "{{ bos_token }}file:{{ messages[0].content }}");

        var template = ChatTemplateLoader.Load(_folder.Path);

        Assert.Equal("<s>file:Hello", template.Render(Hello));
        Assert.Contains("file:", template.Source, StringComparison.Ordinal);
    }

    [Fact]
    public void Named_templates_in_the_config_give_the_tool_template_to_requests_with_tools()
    {
        Config(new JsonObject
        {
            ["chat_template"] = new JsonArray(
                new JsonObject { ["name"] = "default", ["template"] = "plain:{{ messages[0].content }}" },
                new JsonObject { ["name"] = "tool_use", ["template"] = "tools:{{ tools | length }}:{{ messages[0].content }}" },
                new JsonObject { ["name"] = "rag", ["template"] = "rag" }),
        });

        var template = ChatTemplateLoader.Load(_folder.Path);

        Assert.Equal("plain:Hello", template.Render(Hello));
        Assert.Equal("tools:1:Hello", template.Render(Hello, tools: Weather));
        // A follow-up holding a call and its result, sent without tools: the default template never saw such turns.
        ChatMessage[] followUp = [new("user", "Weather?"), new("assistant", string.Empty, [new ToolCall("call_1", "get_weather", """{"city":"Bern"}""")]),
            new("tool", "12 degrees", ToolCallId: "call_1")];
        Assert.StartsWith("tools:0:", template.Render(followUp), StringComparison.Ordinal);
    }

    [Fact]
    public void Template_files_replace_the_configs_templates_whole_as_transformers_does()
    {
        Config(new JsonObject
        {
            ["chat_template"] = new JsonArray(
                new JsonObject { ["name"] = "default", ["template"] = "old:{{ messages[0].content }}" },
                new JsonObject { ["name"] = "tool_use", ["template"] = "old-tools:{{ messages[0].content }}" }),
        });
        File.WriteAllText(_folder.Combine("chat_template.jinja"), "file:{{ messages[0].content }}");

        var template = ChatTemplateLoader.Load(_folder.Path);

        Assert.Equal("file:Hello", template.Render(Hello));
        Assert.Equal("file:Hello", template.Render(Hello, tools: Weather));
    }

    [Fact]
    public void Additional_chat_templates_add_the_tool_template_to_the_file()
    {
        Config(new JsonObject());
        File.WriteAllText(_folder.Combine("chat_template.jinja"), "plain:{{ messages[0].content }}");
        Directory.CreateDirectory(_folder.Combine("additional_chat_templates"));
        File.WriteAllText(Path.Combine(_folder.Combine("additional_chat_templates"), "tool_use.jinja"), "tools:{{ messages[0].content }}");

        var template = ChatTemplateLoader.Load(_folder.Path);

        Assert.Equal("plain:Hello", template.Render(Hello));
        Assert.Equal("tools:Hello", template.Render(Hello, tools: Weather));
    }

    [Fact]
    public void A_folder_without_any_template_is_prompted_in_ChatML()
    {
        Config(new JsonObject { ["eos_token"] = "</s>" });

        Assert.IsType<ChatMlTemplate>(ChatTemplateLoader.Load(_folder.Path));
    }

    [Fact]
    public void A_template_file_that_cannot_be_parsed_refuses_the_model_naming_the_file()
    {
        Config(new JsonObject());
        File.WriteAllText(_folder.Combine("chat_template.jinja"), "{% for m in messages %}{{ m.content }");

        var failure = Assert.Throws<ModelFolderException>(() => ChatTemplateLoader.Load(_folder.Path));

        Assert.Contains("chat_template.jinja", failure.Message, StringComparison.Ordinal);
    }

    private void Config(JsonObject config) => File.WriteAllText(_folder.Combine("tokenizer_config.json"), config.ToJsonString());

    public void Dispose() => _folder.Dispose();
}
