using System.Text.Json;

namespace Appliance.Runtime.Onnx.Tokenization.HuggingFace;

/// <summary>
/// What a tokenizer.json's post_processor adds around a single sequence when special tokens are asked for (a plain
/// prompt): TemplateProcessing's "single" template (Llama 2 and 3, Gemma 3: the BOS), Bert and Roberta's CLS/SEP,
/// a Sequence of these; ByteLevel adds nothing. Another kind refuses the model at load, naming it.
/// </summary>
internal sealed record PostProcessor(IReadOnlyList<int> Prefix, IReadOnlyList<int> Suffix)
{
    public static readonly PostProcessor None = new([], []);

    public IReadOnlyList<int> Apply(IReadOnlyList<int> ids) =>
        Prefix.Count == 0 && Suffix.Count == 0 ? ids : [.. Prefix, .. ids, .. Suffix];

    public static PostProcessor Read(JsonElement root, string path) =>
        root.TryGetProperty("post_processor", out var step) && step.ValueKind == JsonValueKind.Object ? Of(step, path) : None;

    private static PostProcessor Of(JsonElement step, string path)
    {
        switch (TokenizerJson.Type(step))
        {
            case "ByteLevel":
                return None;
            case "Sequence":
                var (prefix, suffix) = (new List<int>(), new List<int>());
                foreach (var inner in TokenizerJson.Array(step, "processors", path).Select(p => Of(p, path)))
                {
                    // Each processor wraps what the ones before it produced.
                    prefix.InsertRange(0, inner.Prefix);
                    suffix.AddRange(inner.Suffix);
                }

                return new PostProcessor(prefix, suffix);
            case "TemplateProcessing":
                return Template(step, path);
            case "BertProcessing" or "RobertaProcessing":
                return new PostProcessor([Pair(step, "cls", path)], [Pair(step, "sep", path)]);
            case var other:
                throw TokenizerJson.Unsupported(path, "post_processor.type", other);
        }
    }

    /// <summary>The ids of the "single" template's special tokens before and after the sequence ("A").</summary>
    private static PostProcessor Template(JsonElement step, string path)
    {
        var specials = TokenizerJson.Object(step, "special_tokens", path);
        var (prefix, suffix) = (new List<int>(), new List<int>());
        var afterSequence = false;
        foreach (var piece in TokenizerJson.Array(step, "single", path))
        {
            if (piece.TryGetProperty("Sequence", out _))
            {
                afterSequence = true;
            }
            else if (piece.TryGetProperty("SpecialToken", out var special) && special.TryGetProperty("id", out var name)
                && specials.TryGetProperty(name.GetString() ?? string.Empty, out var token) && token.TryGetProperty("ids", out var ids))
            {
                (afterSequence ? suffix : prefix).AddRange(ids.EnumerateArray().Select(id => id.GetInt32()));
            }
            else
            {
                throw TokenizerJson.Unsupported(path, "post_processor.single", piece.GetRawText());
            }
        }

        return new PostProcessor(prefix, suffix);
    }

    /// <summary>Bert's and Roberta's ["[CLS]", 101] pairs.</summary>
    private static int Pair(JsonElement step, string name, string path) =>
        step.TryGetProperty(name, out var pair) && pair.ValueKind == JsonValueKind.Array && pair.GetArrayLength() == 2
            ? pair[1].GetInt32()
            : throw TokenizerJson.Unsupported(path, $"post_processor.{name}", pair.ValueKind == JsonValueKind.Undefined ? null : pair.GetRawText());
}
