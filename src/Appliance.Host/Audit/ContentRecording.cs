using Appliance.Api.Audit;
using Appliance.Host.Options;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Audit;

/// <summary>The models whose configuration sets RecordContent.</summary>
internal sealed class ContentRecording(IOptions<ModelsOptions> models) : IContentRecording
{
    private readonly HashSet<string> _recording = [.. models.Value.Models.Where(m => m.Value.RecordContent).Select(m => m.Key)];

    public bool Records(string modelId) => _recording.Contains(modelId);
}
