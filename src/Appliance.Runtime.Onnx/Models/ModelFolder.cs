namespace Appliance.Runtime.Onnx.Models;

/// <summary>A verified model folder: its configuration and digest. Opening it checks the manifest first.</summary>
public sealed record ModelFolder(string Path, GenAiConfig Config, ModelManifest Manifest)
{
    public string Digest => Manifest.Digest;

    public string DecoderPath => System.IO.Path.Combine(Path, Config.Decoder.FileName);

    public static ModelFolder Open(string path)
    {
        if (!Directory.Exists(path))
        {
            throw new ModelFolderException($"{path}: model folder does not exist.");
        }

        var manifest = ModelManifest.Verify(path);
        foreach (var required in new[] { GenAiConfig.FileName })
        {
            if (!manifest.Lists(required))
            {
                throw new ModelFolderException($"{path}: '{required}' is not listed in the manifest.");
            }
        }

        var config = GenAiConfig.Load(System.IO.Path.Combine(path, GenAiConfig.FileName));
        if (!manifest.Lists(config.Decoder.FileName))
        {
            throw new ModelFolderException($"{path}: the decoder file '{config.Decoder.FileName}' named in {GenAiConfig.FileName} is not listed in the manifest.");
        }

        return new ModelFolder(path, config, manifest);
    }
}
