using Microsoft.Extensions.Options;

namespace Appliance.Host.Options;

/// <summary>
/// Something derived from the declared models that follows the settings files as they are read again: a model the
/// models role adds, or whose AllowedGroups it narrows, is loaded without a restart, and its rules must hold at once.
/// (Built once at start, they left a model added later open to every chat user.) While the files are invalid, the
/// last valid view stays: nothing new loads then either.
/// </summary>
internal sealed class LiveModelsView<T>(IOptionsMonitor<ModelsOptions> models, Func<ModelsOptions, T> derive)
    where T : class
{
    private volatile Snapshot? _last;

    public T Current
    {
        get
        {
            var last = _last;
            ModelsOptions options;
            try
            {
                options = models.CurrentValue;
            }
            catch (OptionsValidationException) when (last is not null)
            {
                return last.Value;
            }

            if (last is not null && ReferenceEquals(last.Source, options))
            {
                return last.Value;
            }

            var next = new Snapshot(options, derive(options));
            _last = next;
            return next.Value;
        }
    }

    private sealed record Snapshot(ModelsOptions Source, T Value);
}
