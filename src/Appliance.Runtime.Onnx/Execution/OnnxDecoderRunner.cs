using Appliance.Engine;
using Appliance.Runtime.Onnx.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>
/// Runs a decoder export on ONNX Runtime for the engine: one session run per batch, the KV cache kept between steps
/// in preallocated memory (concatenating or shared-buffer layout, as genai_config.json says), only each row's last
/// position's logits handed to the sampler.
/// </summary>
public sealed class OnnxDecoderRunner : IModelRunner
{
    private readonly InferenceSession _session;
    private readonly IKvCacheLayout _kvCache;
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
        _kvCache = config.Search.PastPresentShareBuffer
            ? new SharedBufferKvCache(_decoder.Layers, _decoder.KvHeads, _decoder.HeadSize, MaxBatchSize, context, [.. _presentKeyNames, .. _presentValueNames])
            : new ConcatKvCache(_decoder.Layers, _decoder.KvHeads, _decoder.HeadSize, MaxBatchSize, context, _presentKeyNames, _presentValueNames);
        _logits = new float[MaxBatchSize * Info.VocabularySize];
    }

    public ModelInfo Info { get; }

    public int MaxBatchSize { get; }

    /// <summary>Bytes preallocated for the KV cache.</summary>
    public long KvCacheBytes => _kvCache.Bytes;

    public ReadOnlyMemory<float> Execute(IReadOnlyList<RunnerSequence> batch)
    {
        ValidateBatch(batch);
        var width = batch.Max(r => r.NewTokens.Length);
        var decode = width == 1 && batch.All(r => r.PastLength > 0);
        var plan = _kvCache.Prepare(batch, decode);
        using var inputs = DecoderInputs.Build(plan.Rows, _kvCache.Padding, plan.PastWidth, Info.PadTokenId, (_idsType, _maskType, _positionsType));
        try
        {
            using var binding = _session.CreateIoBinding();
            binding.BindInput(_decoder.Inputs.InputIds, inputs.Ids);
            binding.BindInput(_decoder.Inputs.AttentionMask, inputs.Mask);
            if (_hasPositionIds)
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

            binding.BindOutputToDevice(_decoder.Outputs.Logits, OrtMemoryInfo.DefaultInstance);
            _session.RunWithBinding(_runOptions, binding);
            var outputs = TakeOutputs(binding);
            using (var logits = outputs[_decoder.Outputs.Logits])
            {
                CopyLastLogits(logits, plan, inputs.LastIndex, width);
            }

            _kvCache.Commit(plan, outputs);
            return _logits.AsMemory(0, batch.Count * Info.VocabularySize);
        }
        finally
        {
            foreach (var value in plan.Temporaries)
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

    /// <summary>
    /// Keeps only each row's newest real token, written to the row's place in the engine's batch. Models that
    /// return only the last position ([batch, 1, vocabulary]) are taken as they are.
    /// </summary>
    private void CopyLastLogits(OrtValue logits, KvRunPlan plan, int[] lastIndex, int width)
    {
        var vocabulary = Info.VocabularySize;
        var all = logits.GetTensorDataAsSpan<float>();
        var shape = logits.GetTensorTypeAndShape().Shape;
        var positions = shape.Length == 3 ? (int)shape[1] : 1;
        if (shape[^1] != vocabulary || (positions != width && positions != 1))
        {
            throw new InvalidOperationException($"Logits of shape [{string.Join(", ", shape)}] do not match batch {plan.Rows.Count}, width {width}, vocabulary {vocabulary}.");
        }

        for (var row = 0; row < plan.Rows.Count; row++)
        {
            var position = positions == 1 ? 0 : lastIndex[row];
            all.Slice(((row * positions) + position) * vocabulary, vocabulary)
                .CopyTo(_logits.AsSpan(plan.BatchIndex[row] * vocabulary, vocabulary));
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
