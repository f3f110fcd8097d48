using System.CommandLine;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Cli.Commands;

/// <summary>`... manifest &lt;folder&gt;`: hashes every file of a folder into its manifest.json (model folders and bundles alike).</summary>
internal static class ManifestCommand
{
    public static Command Create(string folderDescription, string description)
    {
        var folder = new Argument<DirectoryInfo>("folder") { Description = folderDescription };
        var command = new Command("manifest", description) { folder };
        command.SetAction(parse =>
        {
            var path = parse.GetValue(folder)!.FullName;
            if (!Directory.Exists(path))
            {
                Console.Error.WriteLine($"error: {path} does not exist");
                return 2;
            }

            var manifest = ModelManifest.Create(path);
            Console.WriteLine($"{manifest.Files.Count} files, {manifest.Files.Sum(f => f.Size):N0} bytes, digest {manifest.Digest}");
            return 0;
        });
        return command;
    }
}
