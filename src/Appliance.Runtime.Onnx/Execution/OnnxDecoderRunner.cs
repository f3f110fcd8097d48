using Appliance.Engine;
using Appliance.Runtime.Onnx.Execution.Memory;
using Appliance.Runtime.Onnx.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>
/// Runs a decoder export on ONNX Runtime for the engine: one session run per batch, bound with IOBinding. The KV
/// cache lives in preallocated memory on the device the session runs on (concatenating or shared-buffer layout, as
/// genai_config.json says) and stays there across steps; logits stay on the device too, and only each row's last
/// position crosses to the host, converted to float32. Element types come from the model.
/// </summary>
public sealed partial class OnnxDecoderRunner : IModelRunner
{
    private readonly InferenceSession _session;
    private readonly KvStorage _storage;
    private readonly IKvCacheLayout _kvCache;
    private readonly PrefixBlockPool? _prefixPool;
    private readonly LogitsSelector _selector;
    private readonly HostLogitsBuffer _hostLogits;
    private readonly DecoderConfig _decoder;
    private readonly string[] _pastKeyNames;
    private readonly string[] _pastValueNames;
    private readonly string[] _presentKeyNames;
    private readonly string[] _presentValueNames;
    private readonly int _positionsPerRun;
    private readonly int? _widthSwitch;
    private readonly RunOptions _runOptions = new();
    private long _hostLogitsBytes;
    private readonly int _hostRows; // host logits rows: a step's, or a scored prompt's chunk (RunnerOptions.HostLogitsRows)
    private long _splitSteps;
    private long _largestLogitsBytes;

    public OnnxDecoderRunner(ModelFolder folder, string modelId, RunnerOptions options, ILogger? logger = null)
    {
        if (options.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        logger ??= NullLogger.Instance;
        var config = folder.Config;
        _decoder = config.Decoder;
        var context = Math.Min(config.ContextLength, options.ContextLength ?? config.ContextLength);
        Info = new ModelInfo(modelId, config.VocabularySize, context, config.EosTokenIds.ToHashSet(), config.PadTokenId);
        MaxBatchSize = options.MaxBatchSize;
        _pastKeyNames = DecoderSignature.LayerNames(_decoder.Inputs.PastKey, _decoder.Layers);
        _pastValueNames = DecoderSignature.LayerNames(_decoder.Inputs.PastValue, _decoder.Layers);
        _presentKeyNames = DecoderSignature.LayerNames(_decoder.Outputs.PresentKey, _decoder.Layers);
        _presentValueNames = DecoderSignature.LayerNames(_decoder.Outputs.PresentValue, _decoder.Layers);

        var settings = SessionSettings.From(_decoder.SessionOptions, folder.Path);
        foreach (var ignored in settings.Ignored)
        {
            LogIgnoredOption(logger, modelId, ignored);
        }

        // The KV cache is allocated outside ONNX Runtime's arena; the arena gets the rest of the replica's share.
        var plannedKv = MemoryPlan.KvCacheBytesFor(config, DecoderSignature.FromFile(folder.DecoderPath, _decoder, folder.Path), options.MaxBatchSize, context, options.PrefixCacheTokens);
        var sessionOptions = options.CudaMemoryLimitBytes is { } limit
            ? options with { CudaMemoryLimitBytes = Math.Max(limit - plannedKv, limit / 4) }
            : options;
        (_session, Device) = SessionFactory.Create(folder.DecoderPath, sessionOptions, settings, logger);
        try
        {
            Signature = DecoderSignature.FromSession(_session, _decoder, folder.Path);
            var graph = OnnxFormat.OnnxGraphSignature.Read(folder.DecoderPath);
            RefuseCpuOnlyAttentionOnCuda(folder, graph);
            _storage = Device.CudaDeviceId is { } device ? new CudaKvStorage(_session, device) : new HostKvStorage();
            _kvCache = config.Search.PastPresentShareBuffer
                ? new SharedBufferKvCache(_storage, Signature.KvType, _decoder.Layers, _decoder.KvHeads, _decoder.HeadSize, MaxBatchSize, context, [.. _presentKeyNames, .. _presentValueNames])
                : new ConcatKvCache(_storage, Signature.KvType, _decoder.Layers, _decoder.KvHeads, _decoder.HeadSize, MaxBatchSize, context, _presentKeyNames, _presentValueNames);
            if (options.PrefixCacheBlocks(context) is var blocks and > 0)
            {
                _prefixPool = new PrefixBlockPool(_storage, _kvCache, Signature.KvType, _decoder.Layers, _decoder.KvHeads, _decoder.HeadSize, options.PrefixBlockTokens, blocks);
            }

            _widthSwitch = WidthSwitch(graph, context, modelId, logger);
            Info = Info with { WidthSwitchLength = _widthSwitch };
            _selector = new LogitsSelector(Signature.LogitsType, Info.VocabularySize, Device);
            _positionsPerRun = options.PositionsPerRun(Device.IsCuda, Info.VocabularySize, Signature.LogitsElementSize);
            _hostRows = RunnerOptions.HostLogitsRows(MaxBatchSize, Info.VocabularySize, _positionsPerRun, Signature.LogitsEveryPosition);
            _hostLogits = HostLogitsBuffer.Create(_hostRows * Info.VocabularySize, _session, Device.CudaDeviceId);
        }
        catch
        {
            _prefixPool?.Dispose();
            _kvCache?.Dispose();
            _selector?.Dispose();
            ((IDisposable?)_hostLogits)?.Dispose();
            _storage?.Dispose();
            _session.Dispose();
            throw;
        }
    }

    public ModelInfo Info { get; }

    public int MaxBatchSize { get; }

    /// <summary>Element types at the model's boundary, as the session reports them.</summary>
    public DecoderSignature Signature { get; }

    /// <summary>Where the session runs (CUDA device or CPU, after any fallback).</summary>
    internal SessionDevice Device { get; }

    /// <summary>Bytes preallocated for the KV cache (rows and the prefix cache's block pool), on the device.</summary>
    public long KvCacheBytes => _kvCache.Bytes + (_prefixPool?.Bytes ?? 0);

    /// <summary>The prefix cache's block pool; null when it is switched off.</summary>
    public IPrefixBlockStore? PrefixBlocks => _prefixPool;

    /// <summary>What crossed where so far: proof that decoding keeps the KV cache on the device.</summary>
    public RunnerTraffic Traffic => new(
        _storage.Device,
        _storage.BytesCopied,
        Interlocked.Read(ref _hostLogitsBytes),
        Interlocked.Read(ref _largestLogitsBytes),
        _hostLogits.IsDevicePinned);

    public ReadOnlyMemory<float> Execute(IReadOnlyList<RunnerSequence> batch)
    {
        ValidateBatch(batch);
        _runOptions.Terminate = false; // an interrupt that came after the last run ended is not for this one
        var rows = batch.Sum(r => r.LogitsPositions);
        if (_widthSwitch is { } limit)
        {
            ExecuteAcrossSwitch(batch, limit);
        }
        else
        {
            ExecuteAt(batch, firstRow: 0, minimumMaskWidth: 0, placeAt: null);
        }

        return _hostLogits.Memory[..(rows * Info.VocabularySize)];
    }

    /// <summary>
    /// Runs <paramref name="batch"/> with its logits from host row <paramref name="firstRow"/> on: in one run, or, when
    /// its logits would not fit one run's budget, each row on its own in pieces.
    /// </summary>
    private void ExecuteAt(IReadOnlyList<RunnerSequence> batch, int firstRow, int minimumMaskWidth, int? placeAt)
    {
        var width = batch.Max(r => r.NewTokens.Length);
        if (width == 1 || (long)batch.Count * width <= _positionsPerRun)
        {
            Run(batch, firstRow, keepLogits: batch.Any(r => r.LogitsPositions > 0), minimumMaskWidth, placeAt);
            return;
        }

        // Too many positions for one run's logits: each row on its own, its new tokens in pieces. The KV cache
        // makes the pieces exact; only the last piece's logits are kept (it holds every position asked for).
        foreach (var sequence in batch)
        {
            // The last piece is what plain chunking leaves at the end, or longer when more positions are asked for.
            var length = sequence.NewTokens.Length;
            var head = length - Math.Max(sequence.LogitsPositions, ((length - 1) % _positionsPerRun) + 1);
            for (var start = 0; start < head; start += _positionsPerRun)
            {
                var piece = Math.Min(_positionsPerRun, head - start);
                Run([sequence with { NewTokens = sequence.NewTokens.Slice(start, piece), PastLength = sequence.PastLength + start, LogitsPositions = 0 }], firstRow, keepLogits: false, minimumMaskWidth, placeAt: null);
            }

            Run([sequence with { NewTokens = sequence.NewTokens[head..], PastLength = sequence.PastLength + head }], firstRow, keepLogits: sequence.LogitsPositions > 0, minimumMaskWidth, placeAt: null);
            firstRow += sequence.LogitsPositions;
        }
    }

    /// <summary>
    /// A LongRoPE export picks its rotary cache by the width of the run (<see cref="ModelInfo.WidthSwitchLength"/>):
    /// the long factors for every position of a run wider than the switch. Run alone by onnxruntime-genai, a position
    /// of a sequence whose prompt is longer than the switch uses the long factors (the whole prompt runs at once), and a
    /// position after a shorter prompt uses them from the switch on. Here the same holds in any batch and any chunking:
    /// rows on the short side run together with a mask no wider than the switch, rows on the long side together with a
    /// mask at least one wider (its extra columns masked out), and a row that crosses the switch in this run (a chunk of
    /// a recomputed sequence, or drafts being verified) runs on its own in two pieces. Host rows keep the caller's order.
    /// </summary>
    private void ExecuteAcrossSwitch(IReadOnlyList<RunnerSequence> batch, int limit)
    {
        // The first position of a sequence that uses the long factors.
        int FirstLong(RunnerSequence row) => row.PromptLength > limit ? 0 : limit;
        List<(RunnerSequence Row, int Caller)> shortSide = [], longSide = [], crossing = [];
        for (var caller = 0; caller < batch.Count; caller++)
        {
            var row = batch[caller];
            var firstLong = FirstLong(row);
            var side = row.PastLength >= firstLong ? longSide : row.PastLength + row.NewTokens.Length <= firstLong ? shortSide : crossing;
            side.Add((row, caller));
        }

        if (crossing.Count == 0 && (shortSide.Count == 0 || longSide.Count == 0))
        {
            ExecuteAt(batch, firstRow: 0, longSide.Count > 0 ? limit + 1 : 0, placeAt: null);
            return;
        }

        Interlocked.Increment(ref _splitSteps);

        // The runs write their host rows one after the other; afterwards each caller's rows move to its place.
        var written = new List<(int Caller, int Rows)>();
        var next = 0;
        var slot = 0;
        void RunSide(List<(RunnerSequence Row, int Caller)> side, int minimumMaskWidth)
        {
            if (side.Count == 0)
            {
                return;
            }

            ExecuteAt([.. side.Select(s => s.Row)], next, minimumMaskWidth, placeAt: slot);
            slot += side.Count;
            foreach (var (row, caller) in side)
            {
                written.Add((caller, row.LogitsPositions));
                next += row.LogitsPositions;
            }
        }

        RunSide(shortSide, 0);
        RunSide(longSide, limit + 1);
        foreach (var (row, caller) in crossing)
        {
            var shortTokens = FirstLong(row) - row.PastLength;
            var longTokens = row.NewTokens.Length - shortTokens;
            var shortPiece = row with { NewTokens = row.NewTokens[..shortTokens], LogitsPositions = Math.Max(0, row.LogitsPositions - longTokens) };
            var longPiece = row with { NewTokens = row.NewTokens[shortTokens..], PastLength = row.PastLength + shortTokens, LogitsPositions = Math.Min(row.LogitsPositions, longTokens) };
            ExecuteAt([shortPiece], next, 0, placeAt: null);
            next += shortPiece.LogitsPositions;
            try
            {
                ExecuteAt([longPiece], next, limit + 1, placeAt: null);
            }
            catch when (_kvCache is SharedBufferKvCache shared)
            {
                // A failed run leaves a sequence's KV as it was (the engine then decodes drafts plainly): not half of it.
                shared.Truncate(row.SequenceId, row.PastLength);
                throw;
            }

            next += longPiece.LogitsPositions;
            written.Add((caller, row.LogitsPositions));
        }

        _hostLogits.Reorder(written, Info.VocabularySize);
    }

    public long SplitSteps => Interlocked.Read(ref _splitSteps);

    /// <summary>
    /// Called just before each session run; tests throw from it to fail a chosen run of a step (say, the second piece
    /// of a split one), which ONNX Runtime offers no way to do on purpose. Null in service.
    /// </summary>
    internal Action? BeforeSessionRun { get; set; }

    public void Release(long sequenceId) => _kvCache.Release(sequenceId);

    /// <summary>
    /// A shared buffer keeps every position in place (dropping the last ones is a change of length), and the model
    /// must return logits for every position, not the last one only.
    /// </summary>
    public bool SupportsRollback => _kvCache is SharedBufferKvCache && Signature.LogitsEveryPosition;

    public int MaxLogitsPositions => Math.Min(_hostRows, _positionsPerRun);

    public bool LogitsEveryPosition => Signature.LogitsEveryPosition;

    public void Rollback(long sequenceId, int length)
    {
        if (_kvCache is not SharedBufferKvCache shared)
        {
            throw new NotSupportedException("A concatenating KV cache cannot drop positions in place.");
        }

        shared.Truncate(sequenceId, length);
    }

    /// <summary>
    /// ONNX Runtime checks the run options' terminate flag between kernels: the session run in progress ends with an
    /// error soon (a single kernel that never returns cannot be stopped this way).
    /// </summary>
    public void Interrupt() => _runOptions.Terminate = true;

    public void Dispose()
    {
        _prefixPool?.Dispose();
        _kvCache.Dispose();
        _selector.Dispose();
        ((IDisposable)_hostLogits).Dispose();
        _storage.Dispose();
        _session.Dispose();
        _runOptions.Dispose();
    }

    /// <summary>
    /// ONNX Runtime's CUDA GroupQueryAttention takes float16 and bfloat16 only: a float32 cache (the model builder's
    /// CPU export) would put attention on the CPU and move the whole cache across PCIe twice a step. Refused on CUDA.
    /// </summary>
    private void RefuseCpuOnlyAttentionOnCuda(ModelFolder folder, OnnxFormat.OnnxGraphSignature graph)
    {
        if (Device.IsCuda && CpuOnlyExport.Is(Signature, graph))
        {
            throw new ModelFolderException(
                $"{folder.Path}: GroupQueryAttention over a float32 KV cache runs only on the CPU; on CUDA every step would move the cache " +
                "between device and host. Export the model for CUDA (model builder: -e cuda -p fp16 or int4), or serve this export from a CPU slot " +
                "(the model's Device setting at auto or cpu; Pool:CpuSlots gives a node with GPUs some).");
        }
    }

    /// <summary>
    /// The width of a run beyond which the export switches rotary caches (see <see cref="ExecuteAcrossSwitch"/>); null
    /// when it has no such switch or the context never reaches it. A concatenating cache cannot widen its mask, so
    /// there the switch follows each run's width, as batches make it; said once at load.
    /// </summary>
    private int? WidthSwitch(OnnxFormat.OnnxGraphSignature graph, int context, string modelId, ILogger logger)
    {
        if (!graph.WidthThresholds.TryGetValue(_decoder.Inputs.AttentionMask, out var limit) || limit < 1 || limit >= context)
        {
            return null;
        }

        if (_kvCache.Padding == PaddingSide.Left)
        {
            LogWidthSwitchNotFollowed(logger, modelId, limit);
            return null;
        }

        LogWidthSwitch(logger, modelId, limit);
        return (int)limit;
    }

    /// <summary>
    /// One session run for <paramref name="rows"/>; their logits land in host rows from <paramref name="firstRow"/> on
    /// (or nowhere, for a piece of a prompt whose last position comes later).
    /// </summary>
    private void Run(IReadOnlyList<RunnerSequence> rows, int firstRow, bool keepLogits, int minimumMaskWidth, int? placeAt)
    {
        var width = rows.Max(r => r.NewTokens.Length);
        var decode = width == 1 && rows.All(r => r.PastLength > 0);
        var plan = _kvCache.Prepare(rows, decode, placeAt);
        using var inputs = DecoderInputs.Build(plan.Rows, _kvCache.Padding, plan.PastWidth, Info.PadTokenId, Signature, minimumMaskWidth);
        try
        {
            using var binding = _session.CreateIoBinding();
            binding.BindInput(_decoder.Inputs.InputIds, inputs.Ids);
            binding.BindInput(_decoder.Inputs.AttentionMask, inputs.Mask);
            if (inputs.Positions is not null)
            {
                binding.BindInput(_decoder.Inputs.PositionIds, inputs.Positions);
            }

            for (var layer = 0; layer < _decoder.Layers; layer++)
            {
                binding.BindInput(_pastKeyNames[layer], plan.PastKeys[layer]);
                binding.BindInput(_pastValueNames[layer], plan.PastValues[layer]);
                BindPresent(binding, _presentKeyNames[layer], plan.PresentKeys?[layer]);
                BindPresent(binding, _presentValueNames[layer], plan.PresentValues?[layer]);
            }

            binding.BindOutputToDevice(_decoder.Outputs.Logits, _storage.MemoryInfo);
            _storage.Synchronize(); // row moves issued for this run are done before it reads the cache
            BeforeSessionRun?.Invoke();
            _session.RunWithBinding(_runOptions, binding);
            var outputs = TakeOutputs(binding);
            using (var logits = outputs[_decoder.Outputs.Logits])
            {
                RecordLogitsSize(logits);
                if (keepLogits)
                {
                    SelectLastLogits(logits, plan, inputs.LastIndex, width, firstRow);
                }
            }

            _kvCache.Commit(plan, outputs);
        }
        finally
        {
            foreach (var value in plan.Temporaries)
            {
                value.Dispose();
            }
        }
    }

    private void BindPresent(OrtIoBinding binding, string name, OrtValue? preallocated)
    {
        if (preallocated is not null)
        {
            binding.BindOutput(name, preallocated);
        }
        else
        {
            binding.BindOutputToDevice(name, _storage.MemoryInfo);
        }
    }

    private static Dictionary<string, OrtValue> TakeOutputs(OrtIoBinding binding)
    {
        var names = binding.GetOutputNames();
        var values = binding.GetOutputValues();
        var outputs = new Dictionary<string, OrtValue>(names.Length);
        for (var i = 0; i < names.Length; i++)
        {
            outputs[names[i]] = values.ElementAt(i);
        }

        return outputs;
    }

    /// <summary>
    /// Takes each row's newest real token's logits on the device and writes them, as float32, to the row's place in
    /// the engine's batch on the host. Models that return only the last position ([batch, 1, vocabulary]) are taken
    /// as they are.
    /// </summary>
    private void SelectLastLogits(OrtValue logits, KvRunPlan plan, int[] lastIndex, int width, int firstRow)
    {
        var vocabulary = Info.VocabularySize;
        var shape = logits.GetTensorTypeAndShape().Shape;
        var positions = shape.Length == 3 ? (int)shape[1] : 1;
        if (shape[^1] != vocabulary || shape[0] != plan.Rows.Count || (positions != width && positions != 1))
        {
            throw new InvalidOperationException($"Logits of shape [{string.Join(", ", shape)}] do not match batch {plan.Rows.Count}, width {width}, vocabulary {vocabulary}.");
        }

        // Host rows follow the caller's order (plan row r came from caller row BatchIndex[r]), each caller row taking
        // as many host rows as the positions it asked for: its last ones, in order.
        var asked = new int[plan.Rows.Count];
        foreach (var (row, caller) in plan.BatchIndex.Select((caller, row) => (row, caller)))
        {
            asked[caller] = plan.Rows[row].LogitsPositions;
        }

        var offsets = new int[asked.Length];
        for (var caller = 1; caller < asked.Length; caller++)
        {
            offsets[caller] = offsets[caller - 1] + asked[caller - 1];
        }

        var flatRows = new long[asked.Sum()];
        for (var row = 0; row < plan.Rows.Count; row++)
        {
            var caller = plan.BatchIndex[row];
            var count = asked[caller];
            if (count > 1 && positions == 1)
            {
                throw new InvalidOperationException("The model returns the last position's logits only; drafted tokens cannot be verified with it.");
            }

            for (var j = 0; j < count; j++)
            {
                flatRows[offsets[caller] + j] = ((long)row * positions) + (positions == 1 ? 0 : lastIndex[row] - (count - 1) + j);
            }
        }

        using var destination = _hostLogits.View(firstRow, flatRows.Length, vocabulary);
        _selector.Select(logits, flatRows, destination);
        Interlocked.Add(ref _hostLogitsBytes, (long)flatRows.Length * vocabulary * sizeof(float));
    }

    private void RecordLogitsSize(OrtValue logits)
    {
        var produced = logits.GetTensorTypeAndShape().Shape.Aggregate(1L, (a, b) => a * b) * Signature.LogitsElementSize;
        if (produced > Interlocked.Read(ref _largestLogitsBytes))
        {
            Interlocked.Exchange(ref _largestLogitsBytes, produced);
        }
    }

    private void ValidateBatch(IReadOnlyList<RunnerSequence> batch)
    {
        if (batch.Count == 0 || batch.Count > MaxBatchSize)
        {
            throw new ArgumentException($"A batch holds 1 to {MaxBatchSize} sequences, not {batch.Count}.", nameof(batch));
        }

        if (batch.Sum(r => r.LogitsPositions) > _hostRows)
        {
            throw new ArgumentException($"A batch returns at most {_hostRows} rows of logits.", nameof(batch));
        }

        var width = batch.Max(r => r.NewTokens.Length);
        foreach (var row in batch)
        {
            if (row.NewTokens.Length == 0)
            {
                throw new ArgumentException($"Sequence {row.SequenceId} has no new tokens.", nameof(batch));
            }

            if (row.LogitsPositions < 1 || row.LogitsPositions > row.NewTokens.Length || row.LogitsPositions > _positionsPerRun)
            {
                throw new ArgumentException($"Sequence {row.SequenceId} asks for logits of {row.LogitsPositions} positions out of {row.NewTokens.Length}.", nameof(batch));
            }

            if (row.PastLength + row.NewTokens.Length > Info.ContextLength)
            {
                throw new ArgumentException($"Sequence {row.SequenceId} would exceed the context of {Info.ContextLength} tokens.", nameof(batch));
            }

            // Rows are right-aligned; a row with a past and fewer new tokens than the widest would leave a hole.
            if (batch.Count > 1 && row.PastLength > 0 && row.NewTokens.Length != width)
            {
                throw new ArgumentException("A batch mixes continuing sequences of different widths; run them separately.", nameof(batch));
            }
        }
    }

    [LoggerMessage(EventId = 1102, Level = LogLevel.Information, Message = "Model {ModelId}: genai_config.json option not used: {Option}")]
    private static partial void LogIgnoredOption(ILogger logger, string modelId, string option);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Information, Message = "Model {ModelId}: the rotary cache switches at {Limit} positions (LongRoPE); prompts longer than that use the long factors throughout, in any batch or chunking")]
    private static partial void LogWidthSwitch(ILogger logger, string modelId, long limit);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Warning, Message = "Model {ModelId}: the rotary cache switches at {Limit} positions (LongRoPE), which a concatenating KV cache cannot hold steady: around that length, answers depend on chunking and batching")]
    private static partial void LogWidthSwitchNotFollowed(ILogger logger, string modelId, long limit);
}

/// <summary>
/// Bytes that moved for a runner: inside the device (KV row moves and gathers), to the host (logits rows for the
/// sampler), and the largest logits tensor one run produced on the device.
/// </summary>
public sealed record RunnerTraffic(string Device, long DeviceBytesCopied, long HostLogitsBytes, long LargestLogitsBytes, bool PinnedHostLogits);
