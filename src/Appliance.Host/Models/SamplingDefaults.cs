using Appliance.Api.Models;
using Appliance.Host.Options;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Host.Models;

/// <summary>
/// What a request that names no sampling settings gets: the administrator's settings, else what the model's authors
/// recommend (genai_config.json's search section, copied from generation_config.json, when it samples: Qwen 2.5's
/// temperature 0.7, top_p 0.8, top_k 20, repetition penalty 1.05), else OpenAI's defaults. vLLM does the same.
/// </summary>
internal static class SamplingDefaults
{
    public static ModelDefaults For(ModelOptions options, SearchDefaults search)
    {
        var own = search.DoSample;
        return new ModelDefaults(
            options.DefaultTemperature ?? (own ? search.Temperature : 1f),
            options.DefaultTopP ?? (own && search.TopP is > 0 and <= 1 ? search.TopP : 1f),
            options.DefaultMaxTokens,
            own && search.TopK > 0 ? search.TopK : 0,
            own && search.RepetitionPenalty > 0 ? search.RepetitionPenalty : 1f);
    }
}
