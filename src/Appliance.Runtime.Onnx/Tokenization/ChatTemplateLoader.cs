using System.Text.Json;
using Appliance.Prompting;
using Appliance.Prompting.Jinja;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Runtime.Onnx.Tokenization;

/// <summary>
/// The model's own chat template from tokenizer_config.json (parsed now, so unknown syntax refuses the model at
/// load), or, for folders that ship none, ChatML; a built-in name in configuration overrides both.
/// </summary>
public static class ChatTemplateLoader
{
    /// <summary>Configuration value meaning: the folder's own template, else ChatML.</summary>
    public const string Auto = "auto";

    public static IChatTemplate Load(string folder, TimeProvider? time = null, string? configured = null)
    {
        var path = Path.Combine(folder, TokenizerLoader.ConfigFileName);
        using var config = File.Exists(path) ? JsonDocument.Parse(File.ReadAllBytes(path)) : null;
        var root = config?.RootElement;
        if (configured is not (null or Auto))
        {
            return BuiltInChatTemplates.Create(configured, root is { } r ? Token(r, "bos_token") : null, root is { } e ? Token(e, "eos_token") : null);
        }

        if (root is not { } settings || !settings.TryGetProperty("chat_template", out var template) || template.ValueKind != JsonValueKind.String)
        {
            return new ChatMlTemplate();
        }

        try
        {
            return new HuggingFaceChatTemplate(template.GetString()!, Token(settings, "bos_token"), Token(settings, "eos_token"), time);
        }
        catch (ChatTemplateException exception)
        {
            throw new ModelFolderException($"{path}: chat_template cannot be used: {exception.Message}", exception);
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
