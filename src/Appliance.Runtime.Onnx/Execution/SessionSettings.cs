using Appliance.Runtime.Onnx.Models;
using Microsoft.ML.OnnxRuntime;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>
/// Which of a model folder's own session options (genai_config.json's <c>session_options</c>) the runner honours.
/// Memory layout and graph options are the model author's to choose; threads, devices, memory limits, logging and
/// profiling belong to the appliance; native code from a model folder is never loaded. Whatever is not honoured is
/// named in <see cref="Ignored"/> (logged at load and shown by <c>appliance model inspect</c>).
/// </summary>
public sealed class SessionSettings
{
    /// <summary>CUDA provider options a model may set; device, memory and arena are the pool's.</summary>
    private static readonly HashSet<string> CudaOptionsHonoured = new(StringComparer.Ordinal)
    {
        "enable_skip_layer_norm_strict_mode", "use_tf32", "tunable_op_enable", "tunable_op_tuning_enable",
        "tunable_op_max_tuning_duration_ms", "sdpa_kernel", "cudnn_conv_algo_search", "cudnn_conv_use_max_workspace",
    };

    private static readonly Dictionary<string, string> EntriesIgnored = new(StringComparer.Ordinal)
    {
        ["log_id"] = "the appliance names its own sessions",
        ["intra_op_num_threads"] = "the pool sets threads per replica",
        ["inter_op_num_threads"] = "operators run sequentially",
        ["log_severity_level"] = "the appliance's logging decides",
        ["log_verbosity_level"] = "the appliance's logging decides",
        ["enable_profiling"] = "profiling files are not written on the appliance",
        ["ep_context_enable"] = "compiled-provider context caches are not used",
        ["ep_context_embed_mode"] = "compiled-provider context caches are not used",
        ["ep_context_file_path"] = "compiled-provider context caches are not used",
    };

    /// <summary>onnxruntime-genai's names for ONNX Runtime session configuration keys (its values true/false become 1/0).</summary>
    private static readonly Dictionary<string, string> GenAiConfigKeys = new(StringComparer.Ordinal)
    {
        ["disable_cpu_ep_fallback"] = "session.disable_cpu_ep_fallback",
        ["use_env_allocators"] = "session.use_env_allocators",
        ["disable_quant_qdq"] = "session.disable_quant_qdq",
        ["enable_quant_qdq_cleanup"] = "session.enable_quant_qdq_cleanup",
    };

    private readonly Dictionary<string, string> _configEntries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _cuda = new(StringComparer.Ordinal);
    private readonly List<string> _ignored = [];
    private bool? _cpuMemoryArena;
    private bool? _memoryPattern;
    private GraphOptimizationLevel? _optimization;

    public static SessionSettings Default { get; } = new();

    /// <summary>What was asked for and not honoured, each with the reason ("log_id: the appliance names its own sessions").</summary>
    public IReadOnlyList<string> Ignored => _ignored;

    /// <summary>ONNX Runtime session configuration entries the folder sets (the appliance's own settings win on a clash).</summary>
    public IReadOnlyDictionary<string, string> ConfigEntries => _configEntries;

    /// <summary>CUDA provider options the folder sets and the runner passes on.</summary>
    public IReadOnlyDictionary<string, string> CudaOptions => _cuda;

    public static SessionSettings From(DecoderSessionOptions options, string folder)
    {
        var settings = new SessionSettings();
        foreach (var (key, value) in options.Entries)
        {
            settings.Entry(key, value, folder);
        }

        foreach (var (key, value) in options.ConfigEntries)
        {
            settings._configEntries[key] = value;
        }

        foreach (var (provider, values) in options.Providers)
        {
            if (provider is "cuda" or "CUDA" or "CUDAExecutionProvider")
            {
                foreach (var (key, value) in values)
                {
                    if (CudaOptionsHonoured.Contains(key))
                    {
                        settings._cuda[key] = value;
                    }
                    else
                    {
                        settings._ignored.Add(key switch
                        {
                            "enable_cuda_graph" when value == "0" => null,
                            "enable_cuda_graph" => "cuda.enable_cuda_graph: shapes change every step under continuous batching, so graphs are not captured",
                            "device_id" or "gpu_mem_limit" or "arena_extend_strategy" => $"cuda.{key}: the pool places replicas and sizes their memory",
                            _ => $"cuda.{key}: not among the CUDA options the appliance passes on",
                        } ?? string.Empty);
                    }
                }
            }
            else
            {
                settings._ignored.Add($"provider_options.{provider}: the appliance runs models on CUDA or the CPU");
            }
        }

        settings._ignored.RemoveAll(string.IsNullOrEmpty);
        return settings;
    }

    /// <summary>
    /// Applies the honoured options to a new session's options, with the appliance's configuration entries
    /// (Models:&lt;id&gt;:SessionConfig) over the folder's, and returns them.
    /// </summary>
    public SessionOptions Apply(SessionOptions options, IReadOnlyDictionary<string, string> applianceEntries)
    {
        if (_cpuMemoryArena is { } arena)
        {
            options.EnableCpuMemArena = arena;
        }

        if (_memoryPattern is { } pattern)
        {
            options.EnableMemoryPattern = pattern;
        }

        if (_optimization is { } level)
        {
            options.GraphOptimizationLevel = level;
        }

        var entries = new Dictionary<string, string>(_configEntries, StringComparer.Ordinal);
        foreach (var (key, value) in applianceEntries)
        {
            entries[key] = value;
        }

        foreach (var (key, value) in entries)
        {
            options.AddSessionConfigEntry(key, value);
        }

        return options;
    }

    /// <summary>The pool's CUDA options with the folder's honoured ones added (the pool's own keys always win).</summary>
    public Dictionary<string, string> CudaProviderOptions(IReadOnlyDictionary<string, string> pool)
    {
        var merged = new Dictionary<string, string>(_cuda, StringComparer.Ordinal);
        foreach (var (key, value) in pool)
        {
            merged[key] = value;
        }

        return merged;
    }

    private void Entry(string key, string value, string folder)
    {
        if (EntriesIgnored.TryGetValue(key, out var reason))
        {
            if (key != "log_id")
            {
                _ignored.Add($"{key}: {reason}");
            }

            return;
        }

        switch (key)
        {
            case "custom_ops_library":
                throw new ModelFolderException($"{folder}: genai_config.json asks for the custom operator library '{value}'; the appliance does not load native code from a model folder.");
            case "enable_cpu_mem_arena":
                _cpuMemoryArena = Flag(key, value, folder);
                break;
            case "enable_mem_pattern":
                _memoryPattern = Flag(key, value, folder);
                break;
            case "graph_optimization_level":
                _optimization = value switch
                {
                    "ORT_DISABLE_ALL" => GraphOptimizationLevel.ORT_DISABLE_ALL,
                    "ORT_ENABLE_BASIC" => GraphOptimizationLevel.ORT_ENABLE_BASIC,
                    "ORT_ENABLE_EXTENDED" => GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                    "ORT_ENABLE_ALL" => GraphOptimizationLevel.ORT_ENABLE_ALL,
                    _ => throw new ModelFolderException($"{folder}: session_options.graph_optimization_level '{value}' is not one of ORT_DISABLE_ALL, ORT_ENABLE_BASIC, ORT_ENABLE_EXTENDED, ORT_ENABLE_ALL."),
                };
                break;
            case var mapped when GenAiConfigKeys.TryGetValue(mapped, out var ortKey):
                _configEntries[ortKey] = value switch { "true" => "1", "false" => "0", _ => value };
                break;
            case var entry when entry.Contains('.', StringComparison.Ordinal):
                // ONNX Runtime's session configuration keys are dotted ("session.intra_op.allow_spinning").
                _configEntries[entry] = value;
                break;
            default:
                _ignored.Add($"{key}: not an ONNX Runtime session option the appliance knows");
                break;
        }
    }

    private static bool Flag(string key, string value, string folder) => value switch
    {
        "true" or "1" => true,
        "false" or "0" => false,
        _ => throw new ModelFolderException($"{folder}: session_options.{key} must be true or false, not '{value}'."),
    };
}
