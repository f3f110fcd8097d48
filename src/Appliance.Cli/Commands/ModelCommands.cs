using System.CommandLine;
using System.Globalization;
using Appliance.Runtime.Onnx.Embeddings;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.OnnxFormat;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Runtime.Onnx.Tokenization;

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
        var builder = new Option<string?>("--builder")
        {
            Description = "Write it as onnxruntime-genai's model builder writes Llama-family models: fp32, fp16 (KV cache and logits), bf16, or int4 (MatMulNBits weights)",
        };
        builder.AcceptOnlyFromAmong("fp32", "fp16", "bf16", "int4");
        var command = new Command("synth", "Write a synthetic decoder (random weights, GPT-2 vocabulary) as a model folder")
        {
            output, size, seed, context, weightScale, builder,
        };
        command.SetAction(parse =>
        {
            var spec = (parse.GetValue(size), parse.GetValue(builder)) switch
            {
                ("small", null) => SyntheticModelSpec.Small,
                ("base", null) => SyntheticModelSpec.Base,
                (_, null) => SyntheticModelSpec.Tiny,
                ("small", _) => SyntheticModelSpec.TinyLlama with { HiddenSize = 384, Layers = 4, Heads = 6, KvHeads = 2, ContextLength = 1024 },
                ("base", _) => SyntheticModelSpec.BaseLlama,
                _ => SyntheticModelSpec.TinyLlama,
            };
            spec = parse.GetValue(builder) switch
            {
                "fp16" => spec with { Precision = BoundaryPrecision.Float16 },
                "bf16" => spec with { Precision = BoundaryPrecision.BFloat16 },
                "int4" => spec with { Int4Weights = true },
                _ => spec,
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
        var batch = new Option<int>("--batch") { Description = "Sequences one replica serves at once (Models:<id>:MaxBatchSize)", DefaultValueFactory = _ => 8 };
        var context = new Option<int?>("--context") { Description = "Context per sequence (Models:<id>:ContextLength); default: the model's own" };
        var cuda = new Option<bool>("--cuda") { Description = "Plan for a CUDA device (logits budget and host memory as on a GPU); a CPU-only export fails" };
        var chatTemplate = new Option<string>("--chat-template")
        {
            Description = "The model's ChatTemplate setting (Models:<id>:ChatTemplate): a built-in template replaces the folder's own, which is then not checked",
            DefaultValueFactory = _ => ChatTemplateLoader.Auto,
        };
        var deviceGib = new Option<double?>("--device-gib")
        {
            Description = "Memory available on the device (GiB): without --context, cap the context to fit as the appliance does",
        };
        var pooling = new Option<string>("--pooling")
        {
            Description = "An embedding model's Pooling setting (Models:<id>:Pooling): auto, mean or cls",
            DefaultValueFactory = _ => "auto",
        };
        var command = new Command(
            "verify",
            "Check a model folder before the appliance loads it: every file against manifest.json, genai_config.json, the decoder's " +
            "inputs and outputs and their element types, its external weight files, the session options, the tokenizer and chat template; " +
            "say which kind of device it goes to and print the memory one replica needs. An encoder folder (config.json without " +
            "genai_config.json: an embedding model or a cross-encoder) is opened as the appliance opens it")
        {
            folder, batch, context, cuda, deviceGib, chatTemplate, pooling,
        };
        command.SetAction(parse =>
        {
            try
            {
                if (EncoderFolder.IsEncoder(parse.GetValue(folder)!.FullName))
                {
                    return VerifyEncoder(parse.GetValue(folder)!.FullName, parse.GetValue(pooling)!, parse.GetValue(context));
                }

                var opened = ModelFolder.Open(parse.GetValue(folder)!.FullName);
                var decoder = opened.Config.Decoder;
                var signature = DecoderSignature.FromFile(opened.DecoderPath, decoder, opened.Path);
                var settings = SessionSettings.From(decoder.SessionOptions, opened.Path);
                var graph = OnnxGraphSignature.Read(opened.DecoderPath);
                var cpuOnly = CpuOnlyExport.Is(signature, graph);
                if (cpuOnly && parse.GetValue(cuda))
                {
                    throw new ModelFolderException(
                        $"{opened.Path}: a CPU export (GroupQueryAttention over a float32 KV cache) does not run on CUDA: export for CUDA (-e cuda -p fp16 or int4), or serve it from a CPU slot");
                }

                // What loading reads besides the graph: a tokenizer or chat template the appliance cannot use refuses the model.
                _ = TokenizerLoader.Load(opened.Path);
                _ = ChatTemplateLoader.Load(opened.Path, configured: parse.GetValue(chatTemplate));
                string? note = null;
                var plan = parse.GetValue(deviceGib) is { } gib
                    ? MemoryPlan.ForDevices(
                        opened, signature, parse.GetValue(batch), parse.GetValue(context), null, 1,
                        [(new Engine.Pool.PoolDevice(parse.GetValue(cuda) ? Engine.Pool.DeviceKind.Cuda : Engine.Pool.DeviceKind.Cpu, 0, "device", (long)(gib * (1L << 30)), 0), (long)(gib * (1L << 30)))],
                        out note)
                    : MemoryPlan.For(opened, signature, parse.GetValue(batch), parse.GetValue(context), parse.GetValue(cuda));
                Console.WriteLine($"OK {opened.Path}: {opened.Config.ModelType}, {decoder.Layers} layers, vocabulary {opened.Config.VocabularySize}, context {opened.Config.ContextLength}, digest {opened.Digest}");
                Console.WriteLine($"  inputs: ids {OnnxTypes.Name(signature.IdsType)}, mask {OnnxTypes.Name(signature.MaskType)}, position_ids {(signature.PositionIdsType is { } p ? OnnxTypes.Name(p) : "none")}");
                Console.WriteLine($"  KV cache {OnnxTypes.Name(signature.KvType)} ({(opened.Config.Search.PastPresentShareBuffer ? "shared past/present buffer" : "concatenating")}), {decoder.KvHeads} KV heads of {decoder.HeadSize}; logits {OnnxTypes.Name(signature.LogitsType)}");
                Console.WriteLine($"  operators: {Describe(graph)}");
                Console.WriteLine(cpuOnly
                    ? "  device on auto: a CPU slot (the model builder's CPU export: GroupQueryAttention over a float32 KV cache runs only on the CPU)"
                    : "  device on auto: a GPU when the node has one, else a CPU slot");
                if (graph.WidthThresholds.TryGetValue(decoder.Inputs.AttentionMask, out var widthSwitch))
                {
                    Console.WriteLine($"  rotary cache switches at {widthSwitch} positions (LongRoPE: short factors up to it, long factors beyond)");
                }

                foreach (var ignored in settings.Ignored)
                {
                    Console.WriteLine($"  not used from genai_config.json: {ignored}");
                }

                if (note is not null)
                {
                    Console.WriteLine($"  {note}");
                }

                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  one replica, {parse.GetValue(batch)} sequences of {plan.ContextLength} tokens: device {Gib(plan.DeviceBytes)} (weights {Gib(plan.WeightsBytes)}, KV cache {Gib(plan.KvCacheBytes)}, logits {Gib(plan.LogitsBytes)}, runtime {Gib(plan.RuntimeBytes)}), host {Gib(plan.HostBytes)}"));
                return 0;
            }
            catch (Exception exception) when (exception is ModelFolderException or Prompting.Jinja.ChatTemplateException)
            {
                Console.Error.WriteLine($"FAILED {exception.Message}");
                return 1;
            }
        });
        return command;
    }

    /// <summary>Opens an embedding model or cross-encoder as the appliance does, and says what it will serve.</summary>
    private static int VerifyEncoder(string path, string pooling, int? context)
    {
        var spec = EncoderFolder.Open(path, new EncoderSettings(pooling, context));
        if (spec.Task == EncoderTask.Reranking)
        {
            using var reranker = CrossEncoder.Open(spec, intraOpThreads: 1);
            Console.WriteLine($"OK {spec.Folder}: a cross-encoder for /v1/rerank, up to {spec.MaxTokens} tokens per query and document, digest {spec.Digest}");
        }
        else
        {
            using var embedder = SentenceEmbedder.Open(spec, intraOpThreads: 1);
            Console.WriteLine($"OK {spec.Folder}: an embedding model for /v1/embeddings and /v1/rerank, {embedder.Dimensions} dimensions, {spec.Pooling.ToString().ToLowerInvariant()} pooling, up to {spec.MaxTokens} tokens per input, digest {spec.Digest}");
        }

        Console.WriteLine($"  tokenizer: {spec.Tokenizer.Describe()}; runs on the node's CPU");
        return 0;
    }

    private static string Describe(OnnxGraphSignature graph)
    {
        var notable = new List<string>();
        if (graph.Uses("com.microsoft", "GroupQueryAttention"))
        {
            notable.Add("GroupQueryAttention");
        }

        if (graph.Uses("com.microsoft", "MatMulNBits"))
        {
            notable.Add("MatMulNBits (quantised weights)");
        }

        if (graph.Uses("com.microsoft", "SkipSimplifiedLayerNormalization") || graph.Uses(string.Empty, "SimplifiedLayerNormalization"))
        {
            notable.Add("RMSNorm");
        }

        return notable.Count > 0 ? $"{string.Join(", ", notable)} ({graph.Operators.Count} kinds in all)" : $"{graph.Operators.Count} kinds";
    }

    private static string Gib(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.00} GiB");
}
