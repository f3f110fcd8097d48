using System.Collections.Concurrent;
using Appliance.Api.Admin;
using Appliance.Api.Models;
using Appliance.Engine;
using Appliance.Engine.Pool;
using Appliance.Engine.Scheduling;
using Appliance.Host.Options;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Tokenization;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Models;

/// <summary>
/// Puts declared models on the node's devices: placement by the configured strategy, one engine and ONNX Runtime
/// session per replica (CUDA on its GPU, or a CPU slot), a router in front. Load, unload and reload run one at a time;
/// the settings files are read again first (<see cref="SettingsFiles"/>), so a model added to them can be loaded
/// without a restart, at once.
/// </summary>
internal sealed partial class ModelManager(
    ModelCatalog catalog,
    IOptionsMonitor<ModelsOptions> models,
    SettingsFiles settingsFiles,
    IOptions<PoolOptions> pool,
    NodeDevices devices,
    TimeProvider time,
    ILoggerFactory loggers,
    ILogger<ModelManager> logger) : IModelAdministration, IDisposable
{
    private static readonly TimeSpan SwitchSettleTime = TimeSpan.FromSeconds(2);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private string? _invalidConfiguration; // why the models configuration could not be read at the last look; null when it could
    private readonly ConcurrentDictionary<string, ModelDeployment> _deployments = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, double> _retiredReplicaSeconds = new(StringComparer.Ordinal);
    private readonly IPlacementStrategy _strategy = Placer.Strategy(pool.Value.Placement);

    public IReadOnlyList<ReplicaState> Replicas => [.. _deployments.Values.OrderBy(d => d.Id, StringComparer.Ordinal).SelectMany(d => d.Router.Replicas.Select(r =>
        new ReplicaState(d.Id, r.Index, r.DeviceId, r.Engine.Healthy, r.Engine.RunningRequests, r.Engine.QueuedRequests, r.Engine.KvCacheUsedTokens, r.Engine.KvCacheCapacityTokens, d.MemoryBytes, d.LoadedAt, r.Engine.Preemptions, d.Memory, r.Engine.Restarts)
        {
            PrefixCache = PrefixCacheOf(r.Engine),
            SpeculativeTokens = r.Engine.SpeculationCounters,
            SplitSteps = r.Engine.SplitSteps,
        }))];

    private static PrefixCacheState PrefixCacheOf(GenerationEngine engine)
    {
        var (lookups, hits) = engine.PrefixCacheCounters; // read once: a consistent pair
        return new PrefixCacheState(engine.PrefixCacheCapacityTokens, lookups, hits);
    }

    public IReadOnlyDictionary<string, double> ReplicaSeconds()
    {
        var now = time.GetUtcNow();
        var totals = new Dictionary<string, double>(_retiredReplicaSeconds, StringComparer.Ordinal);
        foreach (var deployment in _deployments.Values)
        {
            totals[deployment.Id] = totals.GetValueOrDefault(deployment.Id) + ((now - deployment.LoadedAt).TotalSeconds * deployment.Placements.Count);
        }

        return totals;
    }

    /// <summary>Lists every declared model as loading (at start, before anything loads).</summary>
    public void AnnounceDeclared()
    {
        foreach (var (id, options) in Declared())
        {
            catalog.Set(new ModelEntry(id, options.Aliases, ModelLoadState.Loading, null, null) { Kind = KindOf(options.Path) });
        }
    }

    /// <summary>Every declared model, one after the other (at start).</summary>
    public async Task LoadDeclaredAsync(CancellationToken cancellationToken)
    {
        foreach (var id in Declared().Keys.ToList())
        {
            cancellationToken.ThrowIfCancellationRequested();
            await LoadAsync(id, cancellationToken);
        }
    }

    public async Task<ModelActionResult> LoadAsync(string id, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            settingsFiles.Reread();
            return Load(id);
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task<ModelActionResult> UnloadAsync(string id, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            settingsFiles.Reread();
            return await UnloadAsync(id, Declared().GetValueOrDefault(id)?.Aliases ?? []);
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task<ModelActionResult> ReloadAsync(string id, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            settingsFiles.Reread();
            if (!Declared().TryGetValue(id, out var options))
            {
                return NotDeclared(id);
            }

            // An id may change kind: its folder now an encoder where a generative model ran, or the other way round.
            var encoderFolder = Runtime.Onnx.Embeddings.EncoderFolder.IsEncoder(options.Path);
            return _deployments.TryGetValue(id, out var old)
                ? encoderFolder ? await ReplaceWithEncoderAsync(id, options, old) : await ReplaceAsync(id, options, old)
                : _encoders.TryGetValue(id, out var encoder)
                ? encoderFolder ? ReplaceEncoder(id, options, encoder) : ReplaceEncoderWithGenerative(id, encoder)
                : Load(id);
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose()
    {
        foreach (var deployment in _deployments.Values)
        {
            deployment.Dispose();
        }

        _deployments.Clear();
        foreach (var encoder in _encoders.Values)
        {
            encoder.Dispose();
        }

        _encoders.Clear();
        _gate.Dispose();
    }

    private Dictionary<string, ModelOptions> Declared()
    {
        try
        {
            var declared = models.CurrentValue.Models;
            _invalidConfiguration = null;
            return declared;
        }
        catch (OptionsValidationException exception)
        {
            // A broken edit of the settings file: keep serving, and say why nothing new loads.
            LogInvalidConfiguration(logger, exception.Message);
            _invalidConfiguration = exception.Message;
            return [];
        }
    }

    /// <summary>The answer to an unload of what no declared model runs as: saying what the name is instead.</summary>
    private ModelActionResult NotLoaded(string id)
    {
        if (id == Appliance.Runtime.Onnx.Embeddings.MiniLmPackage.ModelId)
        {
            return new(ModelActionOutcome.Conflict, $"'{id}' is the built-in embedding model, not a declared one: Appliance:BuiltInEmbeddings=false and a restart switch it off");
        }

        return Declared().ContainsKey(id) ? new(ModelActionOutcome.Conflict, $"model '{id}' is not loaded") : NotDeclared(id);
    }

    /// <summary>The answer to a load or reload of a model the configuration does not declare, or cannot (saying why).</summary>
    private ModelActionResult NotDeclared(string id)
    {
        var declared = Declared();
        var owner = declared.FirstOrDefault(m => m.Value.Aliases.Contains(id, StringComparer.Ordinal)).Key;
        return new(ModelActionOutcome.NotDeclared, _invalidConfiguration is { } invalid
            ? $"the models configuration is invalid, so no model '{id}' can be loaded from it (what runs keeps running): {invalid}"
            : owner is not null ? $"'{id}' is an alias of model '{owner}': name the model by its id"
            : $"no model '{id}' is declared in the configuration");
    }

    /// <param name="replacingEncoder">A reload turning an encoder into a generative model: the encoder serves until this is ready.</param>
    private ModelActionResult Load(string id, bool replacingEncoder = false)
    {
        if (!Declared().TryGetValue(id, out var options))
        {
            return NotDeclared(id);
        }

        if (_deployments.ContainsKey(id) || (_encoders.ContainsKey(id) && !replacingEncoder))
        {
            return new ModelActionResult(ModelActionOutcome.Conflict, $"model '{id}' is already loaded; reload it to pick up a new version");
        }

        if (Runtime.Onnx.Embeddings.EncoderFolder.IsEncoder(options.Path))
        {
            return replacingEncoder
                // The folder turned back into an encoder while this reload ran (a copy still going on): nothing is
                // replaced, and the encoder that serves stays the one the manager holds.
                ? new ModelActionResult(ModelActionOutcome.Failed, $"{options.Path} changed kind while '{id}' was being reloaded; reload it again once the folder is complete")
                : LoadEncoder(id, options);
        }

        if (!replacingEncoder)
        {
            catalog.Set(new ModelEntry(id, options.Aliases, ModelLoadState.Loading, null, null));
        }

        LogLoading(logger, id, options.Path);
        try
        {
            var folder = ModelFolder.Open(options.Path); // checks every file against manifest.json
            var plan = ModelMemory.Plan(folder, options, AvailableMemory(), out var note);
            if (note is not null)
            {
                LogContextCapped(logger, id, note);
            }

            var demands = _deployments.Values.Select(d => new ReplicaDemand(d.Id, d.Placements.Count, d.MemoryBytes, d.Kind))
                .Append(new ReplicaDemand(id, options.Replicas, plan.PlacedBytes, plan.Kind)).ToList();
            var current = _deployments.Values.SelectMany(d => d.Placements).ToList();
            var placements = Placer.Place(demands, devices.Devices, _strategy, current).Where(p => p.Model == id).ToList();
            var deployment = Deploy(id, options, folder, plan, placements);
            ServedModel served;
            try
            {
                served = Serve(id, options, folder, deployment); // reads the chat template: may refuse the folder
            }
            catch
            {
                deployment.Dispose(); // not half-loaded: no replicas held, and a corrected folder loads afresh
                throw;
            }

            _deployments[id] = deployment;
            catalog.Set(new ModelEntry(id, options.Aliases, ModelLoadState.Ready, null, served));
            LogLoaded(logger, id, folder.Digest, string.Join(", ", placements.Select(p => p.DeviceId)));
            return new ModelActionResult(ModelActionOutcome.Done, $"model '{id}' ({folder.Digest}) is ready on {string.Join(", ", placements.Select(p => p.DeviceId))}");
        }
        catch (PlacementException exception)
        {
            return replacingEncoder ? new ModelActionResult(ModelActionOutcome.Conflict, exception.Message) : Failed(id, options, ModelActionOutcome.Conflict, exception);
        }
        catch (Exception exception) when (IsLoadFailure(exception))
        {
            // Replacing an encoder, the entry stays the encoder's (it keeps serving); the caller says why the reload failed.
            return replacingEncoder ? new ModelActionResult(ModelActionOutcome.Failed, exception.Message) : Failed(id, options, ModelActionOutcome.Failed, exception);
        }
    }

    private ModelActionResult Failed(string id, ModelOptions options, ModelActionOutcome outcome, Exception exception)
    {
        // The kind an encoder's entry was given as it started loading stays: /v1/models keeps saying what it would serve.
        var kind = catalog.Find(id) is { } current && current.Id == id ? current.Kind : null;
        catalog.Set(new ModelEntry(id, options.Aliases, ModelLoadState.Failed, exception.Message, null) { Kind = kind });
        LogFailed(logger, exception, id, exception.Message);
        return new ModelActionResult(outcome, exception.Message);
    }

    private ModelDeployment Deploy(string id, ModelOptions options, ModelFolder folder, ReplicaPlan plan, IReadOnlyList<ReplicaPlacement> placements)
    {
        var tokenizer = TokenizerLoader.Load(options.Path);
        var stopTokens = StopTokens.FromTokenizerConfig(options.Path, tokenizer).ToList();
        var replicas = new List<(Replica, IModelRunner)>();
        try
        {
            foreach (var placement in placements)
            {
                var device = devices.Devices.First(d => d.Id == placement.DeviceId);
                var runner = new OnnxDecoderRunner(folder, id, RunnerOptionsFor(options, device, plan), loggers.CreateLogger<OnnxDecoderRunner>());
                if (runner.KvCacheBytes != plan.Plan.KvCacheBytes)
                {
                    LogKvPlanMismatch(logger, id, plan.Plan.KvCacheBytes, runner.KvCacheBytes);
                }

                var engine = new GenerationEngine(runner, tokenizer, SchedulerOptionsFor(options), loggers.CreateLogger<GenerationEngine>(), extraStopTokenIds: stopTokens);
                replicas.Add((new Replica(placement.Replica, placement.DeviceId, engine), runner));
            }
        }
        catch
        {
            foreach (var (replica, runner) in replicas)
            {
                if (replica.Engine.Stop())
                {
                    runner.Dispose();
                }
            }

            throw;
        }

        return new ModelDeployment(id, plan, options.MaxBatchSize, placements, replicas, time.GetUtcNow());
    }

    private static RunnerOptions RunnerOptionsFor(ModelOptions options, PoolDevice device, ReplicaPlan plan) => new()
    {
        MaxBatchSize = options.MaxBatchSize,
        ContextLength = plan.Plan.ContextLength,
        LogitsBudgetBytes = options.LogitsBudgetBytes,
        PrefixCacheTokens = options.PrefixCacheTokens,
        IntraOpThreads = options.IntraOpThreads > 0 || device.Kind == DeviceKind.Cuda ? options.IntraOpThreads : device.Threads,
        CudaDeviceId = device.Kind == DeviceKind.Cuda ? device.Index : null,
        // A replica placed on a GPU must run there: a CPU session would allocate the GPU-sized cache in host memory.
        RequireCuda = device.Kind == DeviceKind.Cuda,
        CudaMemoryLimitBytes = device.Kind == DeviceKind.Cuda ? plan.PlacedBytes : null,
        CudaArenaExtendStrategy = options.CudaArenaExtendStrategy,
        SessionConfig = options.SessionConfig,
    };

    private SchedulerOptions SchedulerOptionsFor(ModelOptions options) => new()
    {
        MaxBatchSize = options.MaxBatchSize,
        PrefillTokenBudget = options.PrefillTokenBudget,
        SpeculativeTokens = options.SpeculativeTokens,
        MaxQueuedRequests = options.MaxQueuedRequests,
        TenantWeights = pool.Value.TenantWeights,
        DefaultTenantWeight = pool.Value.DefaultTenantWeight,
        InteractivePerBatch = pool.Value.InteractivePerBatch,
        RunTimeout = pool.Value.ModelRunTimeout,
    };

    private ServedModel Serve(string id, ModelOptions options, ModelFolder folder, ModelDeployment deployment)
    {
        var template = ChatTemplateLoader.Load(options.Path, time, options.ChatTemplate);
        if (template is Prompting.ChatMlTemplate && options.ChatTemplate is null or ChatTemplateLoader.Auto)
        {
            LogNoChatTemplate(logger, id);
        }

        if (Prompting.ToolCallFormat.Named(options.ToolCallFormat) is null && Prompting.ToolPrompt.RendersTools(template)
            && !Prompting.ToolCallFormat.Recognised(template.Source!))
        {
            LogToolFormatGuessed(logger, id);
        }
        var toolCalls = Prompting.ToolCallFormat.Named(options.ToolCallFormat)
            ?? Prompting.ToolCallFormat.FromTemplate(template.Source);
        var thinking = Prompting.Reasoning.ThinkingTags.TryNamed(options.Reasoning, out var named)
            ? named
            : Prompting.Reasoning.ThinkingTags.FromTemplate(template.Source);
        return new ServedModel(
            id,
            options.Aliases,
            deployment.LoadedAt,
            folder.Digest,
            deployment.Router.Model.ContextLength,
            SamplingDefaults.For(options, folder.Config.Search),
            template,
            deployment.Router,
            toolCalls,
            thinking);
    }

    /// <summary>No new requests at once; running ones get the grace period to finish before the engines stop.</summary>
    private async Task<ModelActionResult> UnloadAsync(string id, IReadOnlyList<string> aliases)
    {
        if (_encoders.TryRemove(id, out var encoder))
        {
            return UnloadEncoder(id, aliases, encoder);
        }

        if (!_deployments.TryRemove(id, out var deployment))
        {
            // A model that failed to load (or was unloaded before) and is no longer declared: nothing runs, and its
            // entry goes, or readiness would say "1 failed" until a restart.
            if (catalog.Find(id) is { Id: var entryId, State: ModelLoadState.Failed or ModelLoadState.Unloaded } && entryId == id
                && !Declared().ContainsKey(id) && _invalidConfiguration is null)
            {
                catalog.Remove(id);
                return new ModelActionResult(ModelActionOutcome.Done, $"model '{id}' was not loaded and is no longer declared: it is no longer listed");
            }

            return NotLoaded(id);
        }

        catalog.Set(new ModelEntry(id, aliases, ModelLoadState.Unloaded, null, null));
        var cancelled = await RetireAsync(deployment);
        if (!Declared().ContainsKey(id) && _invalidConfiguration is null)
        {
            // Removed from the settings (the models role unloads what it no longer declares): not a model of this
            // node any more, so not "1 unloaded" in readiness and /v1/models for ever after.
            catalog.Remove(id);
        }

        LogUnloaded(logger, id, cancelled);
        return new ModelActionResult(ModelActionOutcome.Done, cancelled == 0
            ? $"model '{id}' is unloaded"
            : $"model '{id}' is unloaded; {cancelled} request(s) still running after the grace period were cancelled");
    }

    /// <summary>
    /// A deployment no new request reaches: running requests get the grace period to finish, then its engines stop.
    /// Returns how many requests were cancelled. Not cancellable: once out of the list, a deployment nobody disposes
    /// would hold its device memory unseen (an administrator's call that times out must not leave one behind).
    /// </summary>
    private async Task<int> RetireAsync(ModelDeployment deployment)
    {
        var deadline = time.GetUtcNow() + pool.Value.UnloadGracePeriod;
        while (!deployment.Idle && time.GetUtcNow() < deadline)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(50), time, CancellationToken.None);
        }

        var cancelled = deployment.Router.QueuedRequests + deployment.Router.RunningRequests;
        var replicaSeconds = (time.GetUtcNow() - deployment.LoadedAt).TotalSeconds * deployment.Placements.Count;
        _retiredReplicaSeconds.AddOrUpdate(deployment.Id, replicaSeconds, (_, total) => total + replicaSeconds);
        deployment.Dispose();
        return cancelled;
    }

    /// <summary>
    /// Reload without an outage: the new version is verified and loaded beside the old one, requests switch to it,
    /// then the old one drains and unloads. A new version that fails to verify or load leaves the old one serving.
    /// Only when the devices have no room for both does the old one make room, after the new folder has passed every
    /// check that does not need the device (manifest, tokenizer, chat template, graph signature, memory plan).
    /// </summary>
    private async Task<ModelActionResult> ReplaceAsync(string id, ModelOptions options, ModelDeployment old)
    {
        LogLoading(logger, id, options.Path);
        ModelFolder folder;
        ReplicaPlan plan;
        try
        {
            folder = ModelFolder.Open(options.Path);
            plan = ModelMemory.Plan(folder, options, AvailableMemory(ignoring: old), out var note);
            if (note is not null)
            {
                LogContextCapped(logger, id, note);
            }

            _ = TokenizerLoader.Load(options.Path);
            _ = ChatTemplateLoader.Load(options.Path, time, options.ChatTemplate);
        }
        catch (Exception exception) when (IsLoadFailure(exception))
        {
            return KeptServing(id, ModelActionOutcome.Failed, exception);
        }

        // The new replicas are placed as a model of their own, around everything that runs now (the old one included).
        var incoming = id + "\u0000next";
        List<ReplicaPlacement> placements;
        try
        {
            var demands = _deployments.Values.Select(d => new ReplicaDemand(d.Id, d.Placements.Count, d.MemoryBytes, d.Kind))
                .Append(new ReplicaDemand(incoming, options.Replicas, plan.PlacedBytes, plan.Kind)).ToList();
            placements = [.. Placer.Place(demands, devices.Devices, _strategy, [.. _deployments.Values.SelectMany(d => d.Placements)])
                .Where(p => p.Model == incoming).Select(p => p with { Model = id })];
        }
        catch (PlacementException)
        {
            // Room only once the old version goes. A new one that would not fit even then (more replicas than the
            // devices hold) must not take the model down for a load that fails all the same.
            try
            {
                var others = _deployments.Values.Where(d => d != old).ToList();
                _ = Placer.Place([.. others.Select(d => new ReplicaDemand(d.Id, d.Placements.Count, d.MemoryBytes, d.Kind)), new ReplicaDemand(id, options.Replicas, plan.PlacedBytes, plan.Kind)],
                    devices.Devices, _strategy, [.. others.SelectMany(d => d.Placements)]);
            }
            catch (PlacementException exception)
            {
                return KeptServing(id, ModelActionOutcome.Conflict, exception);
            }

            LogReloadMakesRoom(logger, id);
            await UnloadAsync(id, options.Aliases);
            return Load(id);
        }

        ModelDeployment next;
        try
        {
            next = Deploy(id, options, folder, plan, placements);
        }
        catch (Exception exception) when (IsLoadFailure(exception))
        {
            return KeptServing(id, ModelActionOutcome.Failed, exception);
        }

        ServedModel served;
        try
        {
            served = Serve(id, options, folder, next); // the template was read above, but the folder may have changed since
        }
        catch (Exception exception) when (IsLoadFailure(exception))
        {
            next.Dispose();
            return KeptServing(id, ModelActionOutcome.Failed, exception);
        }

        _deployments[id] = next;
        catalog.Set(new ModelEntry(id, options.Aliases, ModelLoadState.Ready, null, served));
        LogLoaded(logger, id, folder.Digest, string.Join(", ", placements.Select(p => p.DeviceId)));
        // Requests that picked the old version just before the switch are still rendering or tokenising their
        // prompt: give them a moment to reach its engine (and be counted) before it may be found idle.
        await Task.Delay(SwitchSettleTime, time, CancellationToken.None); // past the switch: the old one is retired whatever the caller does
        var cancelled = await RetireAsync(old);
        return new ModelActionResult(ModelActionOutcome.Done, $"model '{id}' ({folder.Digest}) is ready on {string.Join(", ", placements.Select(p => p.DeviceId))}; the previous version drained"
            + (cancelled > 0 ? $" ({cancelled} request(s) still running after the grace period were cancelled)" : string.Empty));
    }

    /// <summary>A reload that failed: the running version stays, and its entry says why the new one was refused.</summary>
    private ModelActionResult KeptServing(string id, ModelActionOutcome outcome, Exception exception)
    {
        if (catalog.Find(id) is { } entry && entry.Id == id)
        {
            catalog.Set(entry with { Error = $"reload refused, the previous version keeps serving: {exception.Message}" });
        }

        LogReloadRefused(logger, exception, id, exception.Message);
        return new ModelActionResult(outcome, $"{exception.Message} (the previous version of '{id}' keeps serving)");
    }

    /// <summary>
    /// Whatever a model's files make fail fails that model alone (a tokenizer entry without its id, a host allocation
    /// too large, a format a reader did not expect): a list of the expected kinds let the others escape, leaving the
    /// model "loading" for good, or ending the node's start.
    /// </summary>
    internal static bool IsLoadFailure(Exception exception) => exception is not OperationCanceledException;

    /// <summary>Free memory per device less what loaded models placed there (except <paramref name="ignoring"/>, about to be replaced).</summary>
    private List<(PoolDevice Device, long Available)> AvailableMemory(ModelDeployment? ignoring = null) =>
        [.. devices.Devices.Select(d => (d, d.MemoryFreeBytes - _deployments.Values.Where(other => other != ignoring)
            .Sum(other => other.Placements.Count(p => p.DeviceId == d.Id) * other.MemoryBytes)))];

    [LoggerMessage(EventId = 3038, Level = LogLevel.Information, Message = "Loading model {ModelId} from {Path}")]
    private static partial void LogLoading(ILogger logger, string modelId, string path);

    [LoggerMessage(EventId = 3039, Level = LogLevel.Information, Message = "Model {ModelId} is ready: digest {Digest}, replicas on {Devices}")]
    private static partial void LogLoaded(ILogger logger, string modelId, string digest, string devices);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Error, Message = "Model {ModelId} failed to load: {Reason}")]
    private static partial void LogFailed(ILogger logger, Exception exception, string modelId, string reason);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Information, Message = "Model {ModelId} is unloaded ({Cancelled} unfinished requests cancelled)")]
    private static partial void LogUnloaded(ILogger logger, string modelId, int cancelled);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Error, Message = "The model configuration is invalid; no model can be loaded until it is fixed: {Reason}")]
    private static partial void LogInvalidConfiguration(ILogger logger, string reason);

    [LoggerMessage(EventId = 3015, Level = LogLevel.Warning, Message = "Model {ModelId}: the devices have no room for the old and the new version side by side; the verified new version replaces the old one after it unloads")]
    private static partial void LogReloadMakesRoom(ILogger logger, string modelId);

    [LoggerMessage(EventId = 3016, Level = LogLevel.Error, Message = "Model {ModelId}: reload refused, the previous version keeps serving: {Reason}")]
    private static partial void LogReloadRefused(ILogger logger, Exception? exception, string modelId, string reason);

    [LoggerMessage(EventId = 3017, Level = LogLevel.Warning, Message = "Model {ModelId} ships no chat template (no chat_template.jinja, none in tokenizer_config.json): it is prompted in ChatML. If it was trained on another format, set Models:<id>:ChatTemplate")]
    private static partial void LogNoChatTemplate(ILogger logger, string modelId);

    [LoggerMessage(EventId = 3018, Level = LogLevel.Warning, Message = "Model {ModelId}: its template renders tools in a format the appliance does not recognise; its tool calls are read as Hermes' <tool_call> JSON. Set Models:<id>:ToolCallFormat if they come back as plain text")]
    private static partial void LogToolFormatGuessed(ILogger logger, string modelId);

    [LoggerMessage(EventId = 3008, Level = LogLevel.Warning, Message = "Model {ModelId}: {Note}")]
    private static partial void LogContextCapped(ILogger logger, string modelId, string note);

    [LoggerMessage(EventId = 3009, Level = LogLevel.Warning, Message = "Model {ModelId}: the KV cache was planned at {Planned} bytes but the runner allocated {Allocated}")]
    private static partial void LogKvPlanMismatch(ILogger logger, string modelId, long planned, long allocated);
}
