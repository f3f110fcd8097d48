using System.Text.Json;
using Appliance.Engine;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Runtime.Onnx.Tokenization;

/// <summary>Chooses the tokenizer a model folder asks for.</summary>
public static class TokenizerLoader
{
    public static ITokenizer Load(string folder)
    {
        var configPath = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(configPath))
        {
            throw new ModelFolderException($"{folder}: no tokenizer_config.json; the folder must say which tokenizer the model uses.");
        }

        string? tokenizerClass;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(configPath));
            tokenizerClass = document.RootElement.TryGetProperty("tokenizer_class", out var value) ? value.GetString() : null;
        }
        catch (JsonException exception)
        {
            throw new ModelFolderException($"{configPath}: not valid JSON: {exception.Message}", exception);
        }

        return tokenizerClass switch
        {
            "GPT2Tokenizer" or "GPT2TokenizerFast" => Gpt2Tokenizer.Instance,
            _ => throw new ModelFolderException(
                $"{configPath}: tokenizer_class '{tokenizerClass}' is not supported yet (supported: GPT2Tokenizer)."),
        };
    }
}
