using Appliance.Api.Models;
using Appliance.Engine;
using Appliance.Engine.Scheduling;
using Appliance.Host.Options;
using Appliance.Runtime.Onnx.Embeddings;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Tokenization;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Models;

/// <summary>
/// Loads every declared model at start, one after the other, logging progress. The server listens meanwhile:
/// readiness turns healthy when all are loaded, and requests to a model still loading get 503.
/// </summary>
internal sealed partial class ModelLoader(
    ModelCatalog catalog,
    IOptions<ModelsOptions> models,
    IOptions<ApplianceOptions> appliance,
    TimeProvider time,
    ILoggerFactory loggers,
    ILogger<ModelLoader> logger) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.Run(() => LoadAll(stoppingToken), stoppingToken);

    private void LoadAll(CancellationToken stoppingToken)
    {
        var declared = models.Value.Models;
        foreach (var (id, options) in declared)
        {
            catalog.Set(new ModelEntry(id, options.Aliases, ModelLoadState.Loading, null, null));
        }

        if (appliance.Value.BuiltInEmbeddings)
        {
            catalog.Set(new ModelEntry(MiniLmPackage.ModelId, [], ModelLoadState.Loading, null, null));
            LoadBuiltInEmbeddings();
        }

        foreach (var (id, options) in declared)
        {
            if (stoppingToken.IsCancellationRequested)
            {
                return;
            }

            LogLoading(logger, id, options.Path);
            try
            {
                var served = Load(id, options);
                catalog.Set(new ModelEntry(id, options.Aliases, ModelLoadState.Ready, null, served));
                LogLoaded(logger, id, served.Digest, served.ContextLength);
            }
            catch (Exception exception) when (exception is ModelFolderException or Microsoft.ML.OnnxRuntime.OnnxRuntimeException or IOException or ArgumentException)
            {
                catalog.Set(new ModelEntry(id, options.Aliases, ModelLoadState.Failed, exception.Message, null));
                LogFailed(logger, exception, id, exception.Message);
            }
        }
    }

    private void LoadBuiltInEmbeddings()
    {
        var id = MiniLmPackage.ModelId;
        var folder = Path.GetFullPath(Path.Combine(appliance.Value.DataFolder, "models", id));
        LogLoading(logger, id, folder);
        try
        {
            var embedder = SentenceEmbedder.Open(MiniLmPackage.Ensure(folder), logger: loggers.CreateLogger<SentenceEmbedder>());
            catalog.Own(embedder);
            catalog.Set(new ModelEntry(id, [], ModelLoadState.Ready, null, null, new ServedEmbedder(id, time.GetUtcNow(), embedder.Digest, embedder)));
            LogLoaded(logger, id, embedder.Digest, embedder.MaxTokens);
        }
        catch (Exception exception) when (exception is ModelFolderException or Microsoft.ML.OnnxRuntime.OnnxRuntimeException or IOException)
        {
            catalog.Set(new ModelEntry(id, [], ModelLoadState.Failed, exception.Message, null));
            LogFailed(logger, exception, id, exception.Message);
        }
    }

    private ServedModel Load(string id, ModelOptions options)
    {
        var folder = ModelFolder.Open(options.Path);
        var tokenizer = TokenizerLoader.Load(options.Path);
        var runner = new OnnxDecoderRunner(
            folder,
            id,
            new RunnerOptions
            {
                MaxBatchSize = options.MaxBatchSize,
                ContextLength = options.ContextLength,
                IntraOpThreads = options.IntraOpThreads,
                CudaDeviceId = options.CudaDevice,
            },
            loggers.CreateLogger<OnnxDecoderRunner>());
        var engine = new GenerationEngine(
            runner,
            tokenizer,
            new SchedulerOptions
            {
                MaxBatchSize = options.MaxBatchSize,
                PrefillTokenBudget = options.PrefillTokenBudget,
                MaxQueuedRequests = options.MaxQueuedRequests,
            },
            loggers.CreateLogger<GenerationEngine>(),
            extraStopTokenIds: StopTokens.FromTokenizerConfig(options.Path, tokenizer));
        catalog.Own(new EngineLease(engine, runner));
        return new ServedModel(
            id,
            options.Aliases,
            time.GetUtcNow(),
            folder.Digest,
            runner.Info.ContextLength,
            new ModelDefaults(options.DefaultTemperature, options.DefaultTopP, options.DefaultMaxTokens),
            ChatTemplateLoader.Load(options.Path, time, options.ChatTemplate),
            engine);
    }

    /// <summary>Disposes an engine, then its runner (the engine's thread must stop before the session goes).</summary>
    private sealed class EngineLease(GenerationEngine engine, IModelRunner runner) : IDisposable
    {
        public void Dispose()
        {
            engine.Dispose();
            runner.Dispose();
        }
    }

    [LoggerMessage(EventId = 3000, Level = LogLevel.Information, Message = "Loading model {ModelId} from {Path}")]
    private static partial void LogLoading(ILogger logger, string modelId, string path);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Model {ModelId} is ready: digest {Digest}, context {ContextLength} tokens")]
    private static partial void LogLoaded(ILogger logger, string modelId, string digest, int contextLength);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Error, Message = "Model {ModelId} failed to load: {Reason}")]
    private static partial void LogFailed(ILogger logger, Exception exception, string modelId, string reason);
}
