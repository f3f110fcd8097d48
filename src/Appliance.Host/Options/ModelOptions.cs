namespace Appliance.Host.Options;

/// <summary>One declared model (configuration "Models:&lt;id&gt;").</summary>
public sealed record ModelOptions
{
    /// <summary>The model folder (genai_config.json, .onnx, tokenizer, manifest.json).</summary>
    public string Path { get; init; } = string.Empty;

    /// <summary>
    /// The node is not ready (the load balancer leaves it out) while this model cannot serve. Off: a model that is
    /// unloaded or failed only makes its own requests fail, and the node keeps serving the others.
    /// </summary>
    public bool Required { get; init; }

    /// <summary>Other names clients may use for this model.</summary>
    public IReadOnlyList<string> Aliases { get; init; } = [];

    /// <summary>
    /// Caps the context below the model's own; also sizes the preallocated KV cache. Null: the model's own context, or
    /// the longest that fits 90% of the memory still available on the N-th roomiest device, N being the replicas
    /// (logged when it caps).
    /// </summary>
    public int? ContextLength { get; init; }

    /// <summary>
    /// Most bytes of logits one model run may produce on the device; longer prefills run in pieces. Null: 16 MiB on
    /// the CPU, 512 MiB on CUDA.
    /// </summary>
    public long? LogitsBudgetBytes { get; init; }

    /// <summary>
    /// Tokens of KV kept for prefix caching, beside the running rows: requests of the same tenant that start with the
    /// same tokens (a system prompt, a document, a conversation's history) reuse them instead of computing them again.
    /// Null: one context's worth (counted in the memory plan); 0 switches prefix caching off.
    /// </summary>
    public int? PrefixCacheTokens { get; init; }

    /// <summary>
    /// Prompt-lookup speculative decoding: while a request decodes alone, up to this many tokens copied from earlier in
    /// its own prompt and output are verified in one run (answers do not change). Pays off on copy-heavy work (editing
    /// a given text, code edits) and on GPUs; 0 (the default) switches it off. Needs a shared-buffer KV cache (the
    /// model builder's exports).
    /// </summary>
    public int SpeculativeTokens { get; init; }

    public int MaxBatchSize { get; init; } = 8;

    public int PrefillTokenBudget { get; init; } = 1024;

    public int MaxQueuedRequests { get; init; } = 256;

    /// <summary>
    /// An embedding model's pooling: auto (sentence-transformers' modules.json and its Pooling module decide), mean or
    /// cls (for a folder without modules.json, as the model's card says).
    /// </summary>
    public string Pooling { get; init; } = "auto";

    /// <summary>Threads for one ONNX Runtime operator; 0 uses every core.</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>How many copies of the model serve requests, each on its own device (GPU or CPU slot).</summary>
    public int Replicas { get; init; } = 1;

    /// <summary>
    /// Which kind of device the replicas go to: auto (a GPU when the node has one, except the model builder's CPU
    /// exports, float32 KV with GroupQueryAttention, which only a CPU slot runs), gpu, or cpu (a CPU slot; a node with
    /// GPUs has none unless Pool:CpuSlots gives it some).
    /// </summary>
    public string Device { get; init; } = "auto";

    /// <summary>
    /// Device memory one replica needs (weights, KV cache, activations); placement reserves it and the CUDA arena is
    /// capped to it. Null: planned from the folder's files (weights), the KV cache as it is allocated (the model's
    /// element type, context and batch), the logits budget and a quarter of the weights for the runtime.
    /// </summary>
    public long? MemoryBytes { get; init; }

    /// <summary>ONNX Runtime session configuration entries for this model, e.g. "session.intra_op.allow_spinning": "0".</summary>
    public Dictionary<string, string> SessionConfig { get; init; } = [];

    /// <summary>How the CUDA memory arena grows: next_power_of_two or same_as_requested.</summary>
    public string CudaArenaExtendStrategy { get; init; } = "next_power_of_two";

    /// <summary>
    /// "auto" (the folder's own chat template, else ChatML), or a built-in format that overrides it: chatml, llama3,
    /// llama2 (also Mistral's [INST]) or phi3.
    /// </summary>
    public string ChatTemplate { get; init; } = "auto";

    /// <summary>
    /// How the model writes tool calls: "auto" (recognised from its chat template, else hermes), hermes (Qwen, Hermes:
    /// &lt;tool_call&gt; blocks), llama3_json (Llama 3.1+: bare JSON calls), mistral ([TOOL_CALLS] lists), deepseek_v3 or
    /// deepseek_v3_1 (DeepSeek's special-token blocks, type-then-name with fenced arguments or name-first with bare ones).
    /// </summary>
    public string ToolCallFormat { get; init; } = "auto";

    /// <summary>
    /// Whether the model thinks before answering: "auto" (when its chat template mentions &lt;/think&gt;, as Qwen3's,
    /// QwQ's and DeepSeek R1's do), "think" (its thought is between &lt;think&gt; and &lt;/think&gt;) or "none" (its
    /// output is all answer).
    /// </summary>
    public string Reasoning { get; init; } = "auto";

    /// <summary>Keycloak roles allowed to use this model; with <see cref="AllowedGroups"/> empty too, every chat user may.</summary>
    public IReadOnlyList<string> AllowedRoles { get; init; } = [];

    /// <summary>Keycloak groups (path or name) allowed to use this model.</summary>
    public IReadOnlyList<string> AllowedGroups { get; init; } = [];

    /// <summary>The data-classification label (one of Identity:ClassificationLevels); empty takes Identity:DefaultClassification.</summary>
    public string Classification { get; init; } = string.Empty;

    /// <summary>
    /// Keep the text of requests and answers in the audit log, encrypted with this model's (or its classification's)
    /// content key; destroying the key erases it. Off by default: the audit log records who and how much, not what.
    /// </summary>
    public bool RecordContent { get; init; }

    /// <summary>
    /// Temperature of requests that name none; unset: the model's own (genai_config.json's search section, when it
    /// samples: do_sample), else 1 as OpenAI's API.
    /// </summary>
    public float? DefaultTemperature { get; init; }

    /// <summary>top_p of requests that name none; unset: the model's own when it samples, else 1.</summary>
    public float? DefaultTopP { get; init; }

    /// <summary>
    /// max_tokens of chat and completion requests that name none; unset: what the context leaves, up to
    /// Limits:MaxTokens, as OpenAI's API does (answers are not cut short for clients that never send a limit).
    /// </summary>
    public int? DefaultMaxTokens { get; init; }
}
