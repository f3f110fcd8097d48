using System.Text.Json;
using Appliance.Engine;

namespace Appliance.Runtime.Onnx.Tokenization;

/// <summary>
/// The end-of-turn token a model family's tokenizer_config.json names as eos_token (for example &lt;|im_end|&gt; or
/// &lt;|eot_id|&gt;), as a token id, when the tokenizer maps its text to exactly one id.
/// </summary>
public static class StopTokens
{
    public static IReadOnlyList<int> FromTokenizerConfig(string folder, ITokenizer tokenizer)
    {
        var path = Path.Combine(folder, TokenizerLoader.ConfigFileName);
        if (!File.Exists(path))
        {
            return [];
        }

        using var config = JsonDocument.Parse(File.ReadAllBytes(path));
        if (!config.RootElement.TryGetProperty("eos_token", out var eos))
        {
            return [];
        }

        var text = eos.ValueKind switch
        {
            JsonValueKind.String => eos.GetString(),
            JsonValueKind.Object when eos.TryGetProperty("content", out var content) => content.GetString(),
            _ => null,
        };
        var ids = string.IsNullOrEmpty(text) ? [] : tokenizer.Encode(text);
        return ids.Count == 1 ? [ids[0]] : [];
    }
}
