using System.Text.Json;
using Appliance.Engine.Prompting;
using Appliance.Engine.Prompting.Jinja;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Runtime.Onnx.Tokenization;

/// <summary>
/// The model's own chat template from tokenizer_config.json (parsed now, so unknown syntax refuses the model at
/// load), or ChatML for folders that ship none.
/// </summary>
public static class ChatTemplateLoader
{
    public static IChatTemplate Load(string folder, TimeProvider? time = null)
    {
        var path = Path.Combine(folder, TokenizerLoader.ConfigFileName);
        if (!File.Exists(path))
        {
            return new ChatMlTemplate();
        }

        using var config = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = config.RootElement;
        if (!root.TryGetProperty("chat_template", out var template) || template.ValueKind != JsonValueKind.String)
        {
            return new ChatMlTemplate();
        }

        try
        {
            return new HuggingFaceChatTemplate(template.GetString()!, Token(root, "bos_token"), Token(root, "eos_token"), time);
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
