using Appliance.Engine;
using Appliance.Runtime.Onnx.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>
/// Runs a decoder export (concatenating KV layout) on ONNX Runtime for the engine: one session run per batch,
/// KV tensors kept between steps, only the last position's logits handed to the sampler.
/// </summary>
public sealed class OnnxDecoderRunner : IModelRunner
{
    private readonly InferenceSession _session;
    private readonly ConcatKvCache _kvCache;
    private readonly DecoderConfig _decoder;
    private readonly float[] _logits;
    private readonly string[] _pastKeyNames;
    private readonly string[] _pastValueNames;
    private readonly string[] _presentKeyNames;
    private readonly string[] _presentValueNames;
    private readonly bool _hasPositionIds;
    private readonly TensorElementType _idsType;
    private readonly TensorElementType _maskType;
    private readonly TensorElementType _positionsType;
    private readonly RunOptions _runOptions = new();

    public OnnxDecoderRunner(ModelFolder folder, string modelId, RunnerOptions options, ILogger? logger = null)
    {
        if (options.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        var config = folder.Config;
        if (config.Search.PastPresentShareBuffer)
        {
            throw new ModelFolderException(
                $"{folder.Path}: search.past_present_share_buffer is true; the shared-buffer KV layout is not supported yet.");
        }

        _decoder = config.Decoder;
        var context = Math.Min(config.ContextLength, options.ContextLength ?? config.ContextLength);
        Info = new ModelInfo(modelId, config.VocabularySize, context, config.EosTokenIds.ToHashSet(), config.PadTokenId);
        MaxBatchSize = options.MaxBatchSize;
        _session = SessionFactory.Create(folder.DecoderPath, options, logger ?? NullLogger.Instance);
        _pastKeyNames = LayerNames(_decoder.Inputs.PastKey);
        _pastValueNames = LayerNames(_decoder.Inputs.PastValue);
        _presentKeyNames = LayerNames(_decoder.Outputs.PresentKey);
        _presentValueNames = LayerNames(_decoder.Outputs.PresentValue);
        _hasPositionIds = _session.InputMetadata.ContainsKey(_decoder.Inputs.PositionIds);
        _idsType = InputType(_decoder.Inputs.InputIds);
        _maskType = InputType(_decoder.Inputs.AttentionMask);
        _positionsType = _hasPositionIds ? InputType(_decoder.Inputs.PositionIds) : TensorElementType.Int64;
        CheckSignature(folder.Path);
        _kvCache = new ConcatKvCache(_decoder.Layers, _decoder.KvHeads, _decoder.HeadSize, MaxBatchSize, context);
        _logits = new float[MaxBatchSize * Info.VocabularySize];
    }

    public ModelInfo Info { get; }

    public int MaxBatchSize { get; }

    /// <summary>Bytes preallocated for the KV cache.</summary>
    public long KvCacheBytes => _kvCache.ArenaBytes;

    public ReadOnlyMemory<float> Execute(IReadOnlyList<RunnerSequence> batch)
    {
        ValidateBatch(batch);
        var width = batch.Max(r => r.NewTokens.Length);
        var decode = width == 1 && batch.All(r => r.PastLength > 0);
        var (past, presentArena) = _kvCache.Prepare(batch, decode);
        var pastLength = past?.Length ?? 0;
        (OrtValue[]? emptyKeys, OrtValue[]? emptyValues) = past is null ? _kvCache.EmptyPast(batch.Count) : (null, null);
        var (ids, mask, positions) = DecoderInputs.Build(batch, pastLength, Info.PadTokenId, _idsType, _maskType, _positionsType);
        (OrtValue[]? presentKeys, OrtValue[]? presentValues) = presentArena is null
            ? (null, null)
            : presentArena.Views([batch.Count, _decoder.KvHeads, pastLength + width, _decoder.HeadSize]);
        try
        {
            using var binding = _session.CreateIoBinding();
            binding.BindInput(_decoder.Inputs.InputIds, ids);
            binding.BindInput(_decoder.Inputs.AttentionMask, mask);
            if (_hasPositionIds)
            {
                binding.BindInput(_decoder.Inputs.PositionIds, positions);
            }

            for (var layer = 0; layer < _decoder.Layers; layer++)
            {
                binding.BindInput(_pastKeyNames[layer], past?.Keys[layer] ?? emptyKeys![layer]);
                binding.BindInput(_pastValueNames[layer], past?.Values[layer] ?? emptyValues![layer]);
                BindPresent(binding, _presentKeyNames[layer], presentKeys?[layer]);
                BindPresent(binding, _presentValueNames[layer], presentValues?[layer]);
            }

            binding.BindOutputToDevice(_decoder.Outputs.Logits, OrtMemoryInfo.DefaultInstance);
            _session.RunWithBinding(_runOptions, binding);
            var outputs = TakeOutputs(binding);
            CopyLastLogits(outputs[_decoder.Outputs.Logits], batch.Count, width);
            outputs[_decoder.Outputs.Logits].Dispose();

            KvGroup present = presentArena is not null
                ? new KvGroup(presentKeys!, presentValues!, [.. batch.Select(r => r.SequenceId)], pastLength + width, presentArena)
                : new KvGroup(
                    [.. _presentKeyNames.Select(n => outputs[n])],
                    [.. _presentValueNames.Select(n => outputs[n])],
                    [.. batch.Select(r => r.SequenceId)],
                    pastLength + width,
                    null);
            if (presentArena is not null)
            {
                // The bound arena views were returned as new handles over the same memory; the group keeps its own.
                foreach (var name in _presentKeyNames.Concat(_presentValueNames))
                {
                    outputs[name].Dispose();
                }
            }

            _kvCache.Commit(batch, present);
            return _logits.AsMemory(0, batch.Count * Info.VocabularySize);
        }
        finally
        {
            ids.Dispose();
            mask.Dispose();
            positions.Dispose();
            foreach (var value in (emptyKeys ?? []).Concat(emptyValues ?? []))
            {
                value.Dispose();
            }
        }
    }

    public void Release(long sequenceId) => _kvCache.Release(sequenceId);

    public void Dispose()
    {
        _kvCache.Dispose();
        _session.Dispose();
        _runOptions.Dispose();
    }

    private static void BindPresent(OrtIoBinding binding, string name, OrtValue? preallocated)
    {
        if (preallocated is not null)
        {
            binding.BindOutput(name, preallocated);
        }
        else
        {
            binding.BindOutputToDevice(name, OrtMemoryInfo.DefaultInstance);
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

    /// <summary>Keeps only each row's last position: with left padding that is every row's newest real token.</summary>
    private void CopyLastLogits(OrtValue logits, int rows, int width)
    {
        var vocabulary = Info.VocabularySize;
        var all = logits.GetTensorDataAsSpan<float>();
        var shape = logits.GetTensorTypeAndShape().Shape;
        var positions = shape.Length == 3 ? (int)shape[1] : 1;
        if (shape[^1] != vocabulary || (positions != width && positions != 1))
        {
            throw new InvalidOperationException($"Logits of shape [{string.Join(", ", shape)}] do not match batch {rows}, width {width}, vocabulary {vocabulary}.");
        }

        for (var row = 0; row < rows; row++)
        {
            all.Slice((((row * positions) + positions - 1) * vocabulary), vocabulary).CopyTo(_logits.AsSpan(row * vocabulary, vocabulary));
        }
    }

    private void ValidateBatch(IReadOnlyList<RunnerSequence> batch)
    {
        if (batch.Count == 0 || batch.Count > MaxBatchSize)
        {
            throw new ArgumentException($"A batch holds 1 to {MaxBatchSize} sequences, not {batch.Count}.", nameof(batch));
        }

        var width = batch.Max(r => r.NewTokens.Length);
        foreach (var row in batch)
        {
            if (row.NewTokens.Length == 0)
            {
                throw new ArgumentException($"Sequence {row.SequenceId} has no new tokens.", nameof(batch));
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

    private string[] LayerNames(string pattern) =>
        [.. Enumerable.Range(0, _decoder.Layers).Select(i => pattern.Replace("%d", i.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal))];

    private TensorElementType InputType(string name) =>
        _session.InputMetadata.TryGetValue(name, out var metadata)
            ? metadata.ElementDataType
            : throw new ModelFolderException($"The model has no input '{name}' (named in genai_config.json).");

    private void CheckSignature(string folder)
    {
        foreach (var name in _pastKeyNames.Concat(_pastValueNames))
        {
            if (!_session.InputMetadata.ContainsKey(name))
            {
                throw new ModelFolderException($"{folder}: the model has no input '{name}' (from genai_config.json's past names).");
            }
        }

        foreach (var name in _presentKeyNames.Concat(_presentValueNames).Append(_decoder.Outputs.Logits))
        {
            if (!_session.OutputMetadata.ContainsKey(name))
            {
                throw new ModelFolderException($"{folder}: the model has no output '{name}' (from genai_config.json).");
            }
        }
    }
}
