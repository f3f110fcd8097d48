using Appliance.Api.Audit;
using Appliance.Host.Options;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Audit;

/// <summary>The models whose configuration sets RecordContent, as the settings files say now.</summary>
internal sealed class ContentRecording(IOptionsMonitor<ModelsOptions> models) : IContentRecording
{
    // A recording model taken out of the file keeps recording while it may still be loaded (until declared otherwise).
    private readonly LiveModelsView<HashSet<string>> _recording = new(models, (declared, previous) =>
        [.. declared.Models.Where(m => m.Value.RecordContent).Select(m => m.Key),
         .. (previous ?? []).Where(id => !declared.Models.ContainsKey(id))]);

    public bool Records(string modelId) => _recording.Current.Contains(modelId);
}
