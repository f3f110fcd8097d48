using Appliance.Api.Models;
using Appliance.Host.Options;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Host.Models;

/// <summary>
/// What a request that names no temperature or top_p gets: the administrator's settings, else the model's own
/// (genai_config.json's search section, when it samples: do_sample), else OpenAI's 1.
/// </summary>
internal static class SamplingDefaults
{
    public static ModelDefaults For(ModelOptions options, SearchDefaults search)
    {
        var own = search.DoSample;
        // Temperature and top_p only: the model builder writes top_k 50 where the model names none and takes the
        // repetition penalty from the model's config, and a penalty would change greedy answers too.
        return new ModelDefaults(
            options.DefaultTemperature ?? (own && search.Temperature is >= 0 and <= 2 ? search.Temperature : 1f),
            options.DefaultTopP ?? (own && search.TopP is > 0 and <= 1 ? search.TopP : 1f),
            options.DefaultMaxTokens);
    }
}
