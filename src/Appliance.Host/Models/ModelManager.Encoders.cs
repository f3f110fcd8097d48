using System.Collections.Concurrent;
using Appliance.Api.Admin;
using Appliance.Api.Models;
using Appliance.Host.Options;
using Appliance.Runtime.Onnx.Embeddings;

namespace Appliance.Host.Models;

/// <summary>
/// Declared encoder models (an embedding model or a cross-encoder: a folder with config.json and no genai_config.json).
/// They run on the node's CPU, one ONNX Runtime session each, outside the GPU pool's placement: requests take turns on
/// the session run by run, as on the built-in embedding model.
/// </summary>
internal sealed partial class ModelManager
{
    private readonly ConcurrentDictionary<string, IDisposable> _encoders = new(StringComparer.Ordinal);

    private ModelActionResult LoadEncoder(string id, ModelOptions options)
    {
        catalog.Set(new ModelEntry(id, options.Aliases, ModelLoadState.Loading, null, null) { Kind = KindOf(options.Path) });
        LogLoading(logger, id, options.Path);
        try
        {
            var (entry, model) = OpenEncoder(id, options);
            _encoders[id] = model;
            catalog.Set(entry);
            LogLoaded(logger, id, entry.Digest!, "cpu");
            return new ModelActionResult(ModelActionOutcome.Done, $"model '{id}' ({entry.Digest}) is ready on cpu");
        }
        catch (Exception exception) when (IsLoadFailure(exception))
        {
            return Failed(id, options, ModelActionOutcome.Failed, exception);
        }
    }

    /// <summary>A reload: the new version opens beside the old one, takes the requests, and the old one closes once its requests are done.</summary>
    private ModelActionResult ReplaceEncoder(string id, ModelOptions options, IDisposable old)
    {
        LogLoading(logger, id, options.Path);
        ModelEntry entry;
        IDisposable model;
        try
        {
            if (!EncoderFolder.IsEncoder(options.Path))
            {
                throw new Runtime.Onnx.Models.ModelFolderException($"{options.Path} no longer holds an encoder model (config.json without genai_config.json); unload '{id}' and load it again to serve another kind of model.");
            }

            (entry, model) = OpenEncoder(id, options);
        }
        catch (Exception exception) when (IsLoadFailure(exception))
        {
            return KeptServing(id, ModelActionOutcome.Failed, exception);
        }

        _encoders[id] = model;
        catalog.Set(entry);
        old.Dispose(); // requests already inside it finish there; new ones reach the new version
        LogLoaded(logger, id, entry.Digest!, "cpu");
        return new ModelActionResult(ModelActionOutcome.Done, $"model '{id}' ({entry.Digest}) is ready on cpu; the previous version closes when its requests are done");
    }

    /// <summary>A reload whose folder is now an encoder where a generative model runs: the encoder opens, takes the requests, and the deployment drains.</summary>
    private async Task<ModelActionResult> ReplaceWithEncoderAsync(string id, ModelOptions options, ModelDeployment old)
    {
        LogLoading(logger, id, options.Path);
        ModelEntry entry;
        IDisposable model;
        try
        {
            (entry, model) = OpenEncoder(id, options);
        }
        catch (Exception exception) when (IsLoadFailure(exception))
        {
            return KeptServing(id, ModelActionOutcome.Failed, exception);
        }

        _encoders[id] = model;
        _deployments.TryRemove(id, out _);
        catalog.Set(entry);
        LogLoaded(logger, id, entry.Digest!, "cpu");
        await Task.Delay(SwitchSettleTime, time, CancellationToken.None); // requests that found the old one reach its engine first
        var cancelled = await RetireAsync(old);
        return new ModelActionResult(ModelActionOutcome.Done, $"model '{id}' ({entry.Digest}) is ready on cpu; the previous generative model drained"
            + (cancelled > 0 ? $" ({cancelled} request(s) still running after the grace period were cancelled)" : string.Empty));
    }

    /// <summary>A reload whose folder is now a generative model where an encoder runs: the encoder serves until the model is ready, and stays if it fails.</summary>
    private ModelActionResult ReplaceEncoderWithGenerative(string id, IDisposable encoder)
    {
        var previous = catalog.Find(id);
        var result = Load(id, replacingEncoder: true);
        if (result.Outcome == ModelActionOutcome.Done)
        {
            _encoders.TryRemove(id, out _);
            encoder.Dispose(); // requests inside it finish there
            return result;
        }

        if (previous is not null)
        {
            catalog.Set(previous with { Error = $"reload refused, the previous version keeps serving: {result.Message}" });
        }

        LogReloadRefused(logger, null, id, result.Message);
        return new ModelActionResult(result.Outcome, $"{result.Message} (the previous version of '{id}' keeps serving)");
    }

    private (ModelEntry Entry, IDisposable Model) OpenEncoder(string id, ModelOptions options)
    {
        if (options.Device.Equals("gpu", StringComparison.OrdinalIgnoreCase))
        {
            throw new Runtime.Onnx.Models.ModelFolderException($"{options.Path}: an encoder model (embeddings, reranking) runs on the node's CPU; set Models:{id}:Device to auto or cpu.");
        }

        if (options.Replicas != 1)
        {
            throw new Runtime.Onnx.Models.ModelFolderException($"{options.Path}: an encoder model runs as one session on the node's CPU; set Models:{id}:Replicas to 1.");
        }

        var spec = EncoderFolder.Open(options.Path, new EncoderSettings(options.Pooling, options.ContextLength));
        var loadedAt = time.GetUtcNow();
        if (spec.Task == EncoderTask.Reranking)
        {
            var reranker = CrossEncoder.Open(spec, options.IntraOpThreads, loggers.CreateLogger<CrossEncoder>(), options.SessionConfig);
            return (new ModelEntry(id, options.Aliases, ModelLoadState.Ready, null, null, Reranker: new ServedReranker(id, loadedAt, spec.Digest, reranker)), reranker);
        }

        var embedder = SentenceEmbedder.Open(spec, options.IntraOpThreads, loggers.CreateLogger<SentenceEmbedder>(), options.SessionConfig);
        return (new ModelEntry(id, options.Aliases, ModelLoadState.Ready, null, null, new ServedEmbedder(id, loadedAt, spec.Digest, embedder)), embedder);
    }

    private static string? KindOf(string folder) => !EncoderFolder.IsEncoder(folder) ? null : EncoderFolder.TaskOf(folder) switch
    {
        EncoderTask.Embedding => "embedding",
        EncoderTask.Reranking => "rerank",
        _ => null,
    };

    /// <summary>Unloads an encoder: no new requests; the ones inside finish before its session goes.</summary>
    private ModelActionResult UnloadEncoder(string id, IReadOnlyList<string> aliases, IDisposable model)
    {
        var kind = catalog.Find(id) is { } current && current.Id == id ? current.KindName : null;
        catalog.Set(new ModelEntry(id, aliases, ModelLoadState.Unloaded, null, null) { Kind = kind });
        model.Dispose();
        if (!Declared().ContainsKey(id) && _invalidConfiguration is null)
        {
            catalog.Remove(id);
        }

        LogUnloaded(logger, id, 0);
        return new ModelActionResult(ModelActionOutcome.Done, $"model '{id}' is unloaded");
    }
}
