using Appliance.Engine;

namespace Appliance.Runtime.Onnx.Tokenization.HuggingFace;

/// <summary>Reads a tokenizer.json once and builds the kind it describes: byte-level BPE, or SentencePiece-style BPE with byte fallback.</summary>
public static class TokenizerJsonLoader
{
    public static ITokenizer Load(string path)
    {
        using var document = TokenizerJson.Read(path);
        var root = document.RootElement;
        var sentencePieceStyle = root.TryGetProperty("model", out var model) && TokenizerJson.IsTrue(model, "byte_fallback");
        return sentencePieceStyle
            ? HuggingFaceSentencePieceTokenizer.FromJson(root, path)
            : HuggingFaceTokenizer.FromJson(root, path);
    }
}
