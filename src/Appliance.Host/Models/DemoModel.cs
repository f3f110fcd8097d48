using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Synthetic;

namespace Appliance.Host.Models;

/// <summary>
/// The embedded default: a small synthetic model written into the data folder on first start. Its weights are
/// random; it proves the plumbing end to end, not the prose.
/// </summary>
internal static class DemoModel
{
    public const string Id = "demo";

    public static string Ensure(string dataFolder)
    {
        var folder = BuiltInModelFolder.For(dataFolder, Id);
        if (!File.Exists(Path.Combine(folder, ModelManifest.FileName)))
        {
            SyntheticModelFolder.Write(SyntheticModelSpec.Tiny with { ContextLength = 1024 }, folder);
        }

        return folder;
    }
}
