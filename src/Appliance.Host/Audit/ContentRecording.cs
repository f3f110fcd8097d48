using Appliance.Api.Audit;
using Appliance.Host.Options;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Audit;

/// <summary>The models whose configuration sets RecordContent, as the settings files say now.</summary>
internal sealed class ContentRecording(IOptionsMonitor<ModelsOptions> models) : IContentRecording
{
    private readonly LiveModelsView<HashSet<string>> _recording =
        new(models, declared => [.. declared.Models.Where(m => m.Value.RecordContent).Select(m => m.Key)]);

    public bool Records(string modelId) => _recording.Current.Contains(modelId);
}
