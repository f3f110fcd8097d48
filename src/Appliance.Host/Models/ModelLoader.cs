using Appliance.Api.Models;
using Appliance.Host.Options;
using Appliance.Runtime.Onnx.Embeddings;
using Appliance.Runtime.Onnx.Models;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Models;

/// <summary>
/// Loads the built-in embedding model and every declared model (through the <see cref="ModelManager"/>) at start, one
/// after the other, logging progress. The server listens meanwhile:
/// readiness turns healthy when all are loaded, and requests to a model still loading get 503.
/// </summary>
internal sealed partial class ModelLoader(
    ModelCatalog catalog,
    ModelManager manager,
    IOptions<ApplianceOptions> appliance,
    TimeProvider time,
    ILoggerFactory loggers,
    ILogger<ModelLoader> logger,
    // Taken here so that its view of the declared models is built at start, from the validated configuration, rather
    // than at a first request, when the file may have been edited into an invalid state.
    Api.Audit.IContentRecording contentRecording) : BackgroundService
{
    private readonly Api.Audit.IContentRecording _contentRecording = contentRecording;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.Run(() => LoadAll(stoppingToken), stoppingToken);

    private async Task LoadAll(CancellationToken stoppingToken)
    {
        manager.AnnounceDeclared(); // readiness waits for them from the start
        if (appliance.Value.BuiltInEmbeddings)
        {
            catalog.Set(new ModelEntry(MiniLmPackage.ModelId, [], ModelLoadState.Loading, null, null) { BuiltIn = true, Kind = "embedding" });
            LoadBuiltInEmbeddings();
        }

        await manager.LoadDeclaredAsync(stoppingToken);
        catalog.MarkStartupComplete();
    }

    private void LoadBuiltInEmbeddings()
    {
        var id = MiniLmPackage.ModelId;
        var folder = BuiltInModelFolder.For(appliance.Value.DataFolder, id);
        LogLoading(logger, id, folder);
        try
        {
            var embedder = SentenceEmbedder.Open(MiniLmPackage.Ensure(folder), logger: loggers.CreateLogger<SentenceEmbedder>());
            catalog.Own(embedder);
            catalog.Set(new ModelEntry(id, [], ModelLoadState.Ready, null, null, new ServedEmbedder(id, time.GetUtcNow(), embedder.Digest, embedder)) { BuiltIn = true, Kind = "embedding" });
            LogLoaded(logger, id, embedder.Digest, embedder.MaxTokens);
        }
        catch (Exception exception) when (ModelManager.IsLoadFailure(exception))
        {
            catalog.Set(new ModelEntry(id, [], ModelLoadState.Failed, exception.Message, null) { BuiltIn = true, Kind = "embedding" });
            LogFailed(logger, exception, id, exception.Message);
        }
    }

    [LoggerMessage(EventId = 3005, Level = LogLevel.Information, Message = "Loading model {ModelId} from {Path}")]
    private static partial void LogLoading(ILogger logger, string modelId, string path);

    [LoggerMessage(EventId = 3006, Level = LogLevel.Information, Message = "Model {ModelId} is ready: digest {Digest}, context {ContextLength} tokens")]
    private static partial void LogLoaded(ILogger logger, string modelId, string digest, int contextLength);

    [LoggerMessage(EventId = 3007, Level = LogLevel.Error, Message = "Model {ModelId} failed to load: {Reason}")]
    private static partial void LogFailed(ILogger logger, Exception exception, string modelId, string reason);
}
