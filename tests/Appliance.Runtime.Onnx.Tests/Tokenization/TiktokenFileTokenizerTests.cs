using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Appliance.Engine.Output;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Tokenization;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Tokenization;

/// <summary>
/// A tiktoken rank file as Meta ships Llama 3 (tokenizer.model in tiktoken's text format), rebuilt from Llama 3's
/// tokenizer.json (same ranks, same regex, same special tokens): its ids must equal the reference's for that file.
/// </summary>
public sealed class TiktokenFileTokenizerTests : IDisposable
{
    private static readonly string[] Texts =
    [
        "Hello, world!",
        "multiple     spaces\tand\ttabs\n\nand new\r\nlines",
        "naïve café, Ελληνικά, русский, 日本語のテキスト, 한국어",
        "emoji 👋🏽🚀 and 𐌰𐌱𐌲 and 1234567",
        "<|begin_of_text|>user\nHi there<|eot_id|>",
    ];

    private readonly TempFolder _folder = new("tiktoken");

    [Theory]
    [InlineData("tokenizer.model")]
    [InlineData("llama3.tiktoken")]
    public void Token_ids_equal_the_reference_for_the_same_vocabulary(string fileName)
    {
        WriteLlama3AsTiktoken(fileName, withPattern: true);
        var tokenizer = TokenizerLoader.Load(_folder.Path);
        var expected = ReferenceTokenizers.Encode("llama3", Texts);
        for (var i = 0; i < Texts.Length; i++)
        {
            var ids = tokenizer.Encode(Texts[i]);
            Assert.True(expected[i].SequenceEqual(ids), $"text {i}: expected [{string.Join(",", expected[i])}], got [{string.Join(",", ids)}]");
            var detokenizer = new IncrementalDetokenizer(tokenizer);
            Assert.Equal(Texts[i], string.Concat(ids.Select(detokenizer.Push)) + detokenizer.Flush());
        }
    }

    [Fact]
    public void A_tiktoken_file_without_its_regex_is_refused_naming_the_key()
    {
        WriteLlama3AsTiktoken("tokenizer.model", withPattern: false);
        var error = Assert.Throws<ModelFolderException>(() => TokenizerLoader.Load(_folder.Path));
        Assert.Contains("'pat_str'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_tiktoken_file_without_tokenizer_config_is_refused()
    {
        File.WriteAllText(_folder.Combine("model.tiktoken"), "IQ== 0\nIg== 1\n");
        var error = Assert.Throws<ModelFolderException>(() => TokenizerLoader.Load(_folder.Path));
        Assert.Contains("tokenizer_config.json", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_folder_without_any_tokenizer_is_refused_naming_what_it_needs()
    {
        var error = Assert.Throws<ModelFolderException>(() => TokenizerLoader.Load(_folder.Path));
        Assert.Contains("tiktoken", error.Message, StringComparison.Ordinal);
        Assert.Contains("tokenizer.json", error.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _folder.Dispose();

    /// <summary>Llama 3's byte-level vocabulary as raw bytes in base64 with its rank, the regex and special tokens in the config.</summary>
    private void WriteLlama3AsTiktoken(string fileName, bool withPattern)
    {
        var source = ReferenceTokenizers.ModelFolder("llama3");
        using var json = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(source, "tokenizer.json")));
        var bytesOf = ByteLevelAlphabet();
        var lines = new StringBuilder();
        foreach (var (piece, rank) in json.RootElement.GetProperty("model").GetProperty("vocab").EnumerateObject()
            .Select(p => (p.Name, p.Value.GetInt32())).OrderBy(p => p.Item2))
        {
            lines.Append(Convert.ToBase64String([.. piece.Select(c => bytesOf[c])])).Append(' ').Append(rank).Append('\n');
        }

        File.WriteAllText(_folder.Combine(fileName), lines.ToString());
        var special = new JsonObject();
        foreach (var token in json.RootElement.GetProperty("added_tokens").EnumerateArray())
        {
            special[token.GetProperty("id").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture)] =
                new JsonObject { ["content"] = token.GetProperty("content").GetString(), ["special"] = true };
        }

        var config = new JsonObject { ["added_tokens_decoder"] = special };
        if (withPattern)
        {
            var split = json.RootElement.GetProperty("pre_tokenizer").GetProperty("pretokenizers")[0];
            config["pat_str"] = split.GetProperty("pattern").GetProperty("Regex").GetString();
        }

        File.WriteAllText(_folder.Combine("tokenizer_config.json"), config.ToJsonString());
    }

    /// <summary>GPT-2's byte-to-character table, reversed: the character a byte-level vocabulary writes for each byte.</summary>
    private static Dictionary<char, byte> ByteLevelAlphabet()
    {
        var table = new Dictionary<char, byte>();
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[(char)(printable ? b : next++)] = (byte)b;
        }

        return table;
    }
}
