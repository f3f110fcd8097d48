using System.Text.Json;
using Appliance.Prompting;
using Appliance.Prompting.Jinja;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Runtime.Onnx.Tokenization;

/// <summary>
/// The model's own chat template (chat_template.jinja, or tokenizer_config.json's; parsed now, so unknown syntax
/// refuses the model at load), or, for folders that ship none, ChatML; a built-in name in configuration overrides both.
/// </summary>
public static class ChatTemplateLoader
{
    /// <summary>Configuration value meaning: the folder's own template, else ChatML.</summary>
    public const string Auto = "auto";

    /// <summary>The file recent transformers versions save the template to, instead of tokenizer_config.json.</summary>
    public const string TemplateFileName = "chat_template.jinja";

    /// <summary>The folder of further named templates (tool_use, ...) beside it.</summary>
    public const string NamedTemplatesFolder = "additional_chat_templates";

    public static IChatTemplate Load(string folder, TimeProvider? time = null, string? configured = null)
    {
        var path = Path.Combine(folder, TokenizerLoader.ConfigFileName);
        using var config = File.Exists(path) ? JsonDocument.Parse(File.ReadAllBytes(path)) : null;
        var root = config?.RootElement;
        var (bos, eos) = root is { } r ? (Token(r, "bos_token"), Token(r, "eos_token")) : (null, null);
        if (configured is not (null or Auto))
        {
            return BuiltInChatTemplates.Create(configured, bos, eos);
        }

        var sources = Sources(folder, root, path);
        if (!sources.TryGetValue("default", out var standard) && !sources.TryGetValue("tool_use", out standard))
        {
            return new ChatMlTemplate { BosToken = bos, EosToken = eos };
        }

        var main = Parse(standard, "default", bos, eos, time);
        return sources.TryGetValue("tool_use", out var tools) && tools.Text != standard.Text
            ? new NamedChatTemplates(main, Parse(tools, "tool_use", bos, eos, time))
            : main;
    }

    /// <summary>
    /// The folder's templates by name, as transformers reads them: chat_template.jinja as "default" and
    /// additional_chat_templates/&lt;name&gt;.jinja when there are such files (the config's are then ignored whole), else
    /// tokenizer_config.json's chat_template (a string is "default"; a list of {name, template} names each).
    /// </summary>
    private static Dictionary<string, (string Text, string Origin)> Sources(string folder, JsonElement? root, string configPath)
    {
        var sources = new Dictionary<string, (string Text, string Origin)>(StringComparer.Ordinal);
        var file = Path.Combine(folder, TemplateFileName);
        var extras = Path.Combine(folder, NamedTemplatesFolder);
        var files = File.Exists(file) || (Directory.Exists(extras) && Directory.EnumerateFiles(extras, "*.jinja").Any());
        if (!files && root is { } settings && settings.TryGetProperty("chat_template", out var template))
        {
            if (template.ValueKind == JsonValueKind.String)
            {
                sources["default"] = (template.GetString()!, configPath);
            }
            else if (template.ValueKind == JsonValueKind.Array)
            {
                foreach (var named in template.EnumerateArray())
                {
                    if (named.ValueKind == JsonValueKind.Object && named.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String
                        && named.TryGetProperty("template", out var text) && text.ValueKind == JsonValueKind.String)
                    {
                        sources[name.GetString()!] = (text.GetString()!, $"{configPath} ({name.GetString()})");
                    }
                }
            }
        }

        if (File.Exists(file))
        {
            sources["default"] = (File.ReadAllText(file), file);
        }

        if (Directory.Exists(extras))
        {
            foreach (var extra in Directory.EnumerateFiles(extras, "*.jinja"))
            {
                sources[Path.GetFileNameWithoutExtension(extra)] = (File.ReadAllText(extra), extra);
            }
        }

        return sources;
    }

    private static HuggingFaceChatTemplate Parse((string Text, string Origin) source, string name, string? bos, string? eos, TimeProvider? time)
    {
        try
        {
            return new HuggingFaceChatTemplate(source.Text, bos, eos, time);
        }
        catch (ChatTemplateException exception)
        {
            throw new ModelFolderException($"{source.Origin}: the {name} chat template cannot be used: {exception.Message}", exception);
        }
    }

    /// <summary>Special tokens are strings or AddedToken objects with a "content".</summary>
    private static string? Token(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) ? value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Object when value.TryGetProperty("content", out var content) => content.GetString(),
            _ => null,
        } : null;
}
