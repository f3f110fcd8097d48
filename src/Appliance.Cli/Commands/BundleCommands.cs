using System.CommandLine;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Cli.Commands;

/// <summary>
/// `appliance bundle ...`: the offline installation bundle (ansible/tools/build-bundle.sh) carries a manifest.json with
/// the size and SHA-256 of every file, in the same format as model folders; the target checks it before installing.
/// </summary>
internal static class BundleCommands
{
    public static Command Create()
    {
        var bundle = new Command("bundle", "Offline installation bundles: write and check their manifest");
        bundle.Subcommands.Add(ManifestCommand.Create("Unpacked bundle folder", "Hash every file of a bundle folder into its manifest.json"));
        bundle.Subcommands.Add(Verify());
        return bundle;
    }

    private static Command Verify()
    {
        var folder = new Argument<DirectoryInfo>("folder") { Description = "Unpacked bundle folder" };
        var command = new Command("verify", "Check every file of a bundle folder against its manifest.json (exit 1 naming the first that differs)") { folder };
        command.SetAction(parse =>
        {
            var path = parse.GetValue(folder)!.FullName;
            try
            {
                var manifest = ModelManifest.Verify(path);
                var version = File.Exists(Path.Combine(path, "VERSION")) ? File.ReadAllText(Path.Combine(path, "VERSION")).Trim() : "unknown";
                Console.WriteLine($"OK bundle {version}: {manifest.Files.Count} files, digest {manifest.Digest}");
                return 0;
            }
            catch (ModelFolderException exception)
            {
                Console.Error.WriteLine($"FAILED {exception.Message}");
                return 1;
            }
        });
        return command;
    }
}
