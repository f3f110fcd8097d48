using System.CommandLine;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Synthetic;

namespace Appliance.Cli.Commands;

/// <summary>`appliance model ...`: write synthetic models, create and verify model manifests.</summary>
internal static class ModelCommands
{
    public static Command Create()
    {
        var model = new Command("model", "Model folders: synthetic test models, manifests, verification");
        model.Subcommands.Add(Synth());
        model.Subcommands.Add(ManifestCommand.Create("Model folder", "Hash every file of a model folder into its manifest.json"));
        model.Subcommands.Add(Verify());
        return model;
    }

    private static Command Synth()
    {
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder to write the model into", Required = true };
        var size = new Option<string>("--size") { Description = "tiny (~3M), small (~26M) or base (~124M parameters)", DefaultValueFactory = _ => "tiny" };
        size.AcceptOnlyFromAmong("tiny", "small", "base");
        var seed = new Option<long>("--seed") { Description = "Seed of the deterministic weights", DefaultValueFactory = _ => 1 };
        var context = new Option<int?>("--context") { Description = "Context length (tokens); defaults to the size's own" };
        var weightScale = new Option<float?>("--weight-scale") { Description = "Half-width of the layers' uniform weights" };
        var command = new Command("synth", "Write a synthetic GPT-style decoder (random weights, GPT-2 vocabulary) as a model folder")
        {
            output, size, seed, context, weightScale,
        };
        command.SetAction(parse =>
        {
            var spec = parse.GetValue(size) switch
            {
                "small" => SyntheticModelSpec.Small,
                "base" => SyntheticModelSpec.Base,
                _ => SyntheticModelSpec.Tiny,
            };
            spec = spec with { Seed = parse.GetValue(seed), ContextLength = parse.GetValue(context) ?? spec.ContextLength };
            spec = spec with { WeightScale = parse.GetValue(weightScale) ?? spec.WeightScale };
            if (spec.Validate() is { } problem)
            {
                Console.Error.WriteLine($"error: {problem}");
                return 2;
            }

            var folder = parse.GetValue(output)!.FullName;
            var manifest = SyntheticModelFolder.Write(spec, folder);
            Console.WriteLine($"wrote {folder}: {spec.ParameterCount:N0} parameters, digest {manifest.Digest}");
            return 0;
        });
        return command;
    }

    private static Command Verify()
    {
        var folder = new Argument<DirectoryInfo>("folder") { Description = "Model folder" };
        var command = new Command("verify", "Check a model folder against its manifest and configuration") { folder };
        command.SetAction(parse =>
        {
            try
            {
                var opened = ModelFolder.Open(parse.GetValue(folder)!.FullName);
                Console.WriteLine($"OK {opened.Path}: {opened.Config.Decoder.Layers} layers, vocabulary {opened.Config.VocabularySize}, context {opened.Config.ContextLength}, digest {opened.Digest}");
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
