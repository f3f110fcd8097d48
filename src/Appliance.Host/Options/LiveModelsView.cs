using Microsoft.Extensions.Options;

namespace Appliance.Host.Options;

/// <summary>
/// Something derived from the declared models that follows the settings files as they are read again: a model the
/// models role adds, or whose AllowedGroups it narrows, is loaded without a restart, and its rules must hold at once.
/// (Built once at start, they left a model added later open to every chat user.) While the files are invalid, the
/// last view built stays: nothing new loads then either. <c>derive</c> gets the previous view, so that what a model
/// removed from the file but still loaded had can be kept until it is unloaded.
/// </summary>
internal sealed class LiveModelsView<T>
    where T : class
{
    private readonly IOptionsMonitor<ModelsOptions> _models;
    private readonly Func<ModelsOptions, T?, T> _derive;
    private volatile Snapshot? _last;

    /// <summary>Builds the first view now (at start, where the configuration was validated), not at a first request.</summary>
    public LiveModelsView(IOptionsMonitor<ModelsOptions> models, Func<ModelsOptions, T?, T> derive)
    {
        _models = models;
        _derive = derive;
        _ = Current;
    }

    public T Current
    {
        get
        {
            var last = _last;
            ModelsOptions options;
            try
            {
                options = _models.CurrentValue;
            }
            catch (Exception exception) when (exception is OptionsValidationException or InvalidOperationException && last is not null)
            {
                return last.Value;
            }

            if (last is not null && ReferenceEquals(last.Source, options))
            {
                return last.Value;
            }

            var next = new Snapshot(options, _derive(options, last?.Value));
            _last = next;
            return next.Value;
        }
    }

    private sealed record Snapshot(ModelsOptions Source, T Value);
}
