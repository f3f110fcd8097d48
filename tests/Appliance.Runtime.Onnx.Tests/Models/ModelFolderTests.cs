using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Models;

public sealed class ModelFolderTests : IDisposable
{
    private readonly TempFolder _root = new("model-folder");

    private string Folder => _root.Path;

    public ModelFolderTests() =>
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny with { VocabularySize = 300, EosTokenId = 299, HiddenSize = 32 }, Folder);

    [Fact]
    public void A_verifiedFolder_opens_with_its_config_and_digest()
    {
        var folder = ModelFolder.Open(Folder);
        Assert.Equal("decoder", folder.Config.ModelType);
        Assert.Equal(300, folder.Config.VocabularySize);
        Assert.Equal([299], folder.Config.EosTokenIds);
        Assert.False(folder.Config.Search.PastPresentShareBuffer);
        Assert.Matches("^sha256:[0-9a-f]{64}$", folder.Digest);
    }

    [Fact]
    public void A_modified_file_refuses_the_model_naming_the_file()
    {
        using (var stream = File.OpenWrite(Path.Combine(Folder, "model.onnx")))
        {
            stream.Seek(-10, SeekOrigin.End);
            stream.WriteByte(0x42);
        }

        var error = Assert.Throws<ModelFolderException>(() => ModelFolder.Open(Folder));
        Assert.Contains("'model.onnx'", error.Message, StringComparison.Ordinal);
        Assert.Contains("SHA-256", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_file_refuses_the_model_naming_the_file()
    {
        File.Delete(Path.Combine(Folder, "tokenizer_config.json"));
        var error = Assert.Throws<ModelFolderException>(() => ModelFolder.Open(Folder));
        Assert.Contains("'tokenizer_config.json'", error.Message, StringComparison.Ordinal);
        Assert.Contains("missing", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("tokenizer.model")] // would be read instead of nothing, or beside tokenizer.json
    [InlineData("chat_template.jinja")]
    [InlineData("sub/extra.onnx.data")]
    public void A_file_the_manifest_does_not_list_refuses_the_model_naming_it(string added)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(Folder, added))!);
        File.WriteAllText(Path.Combine(Folder, added), "not covered by the digest");

        var error = Assert.Throws<ModelFolderException>(() => ModelFolder.Open(Folder));
        Assert.Contains($"'{added}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("not listed in the manifest", error.Message, StringComparison.Ordinal);

        ModelManifest.Create(Folder); // the administrator's fix when the file belongs to the model
        Assert.NotNull(ModelFolder.Open(Folder));
    }

    [Fact]
    public void AFolder_without_manifest_is_refused()
    {
        File.Delete(Path.Combine(Folder, ModelManifest.FileName));
        var error = Assert.Throws<ModelFolderException>(() => ModelFolder.Open(Folder));
        Assert.Contains("manifest.json", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_manifest_entry_outside_theFolder_is_refused()
    {
        var path = Path.Combine(Folder, ModelManifest.FileName);
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"tokenizer_config.json\"", "\"../escape.json\"", StringComparison.Ordinal));
        var error = Assert.Throws<ModelFolderException>(() => ModelFolder.Open(Folder));
        Assert.Contains("outside", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Eos_may_be_a_list_and_a_missing_key_is_named()
    {
        var config = Path.Combine(Folder, GenAiConfig.FileName);
        var json = File.ReadAllText(config);
        File.WriteAllText(config, json.Replace("\"eos_token_id\": 299", "\"eos_token_id\": [299, 7]", StringComparison.Ordinal));
        Assert.Equal([299, 7], GenAiConfig.Load(config).EosTokenIds);

        File.WriteAllText(config, json.Replace("\"context_length\"", "\"context_len\"", StringComparison.Ordinal));
        var error = Assert.Throws<ModelFolderException>(() => GenAiConfig.Load(config));
        Assert.Contains("model.context_length", error.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _root.Dispose();
}
