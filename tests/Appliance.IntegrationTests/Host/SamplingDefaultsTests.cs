using Appliance.Host.Models;
using Appliance.Host.Options;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.IntegrationTests.Host;

/// <summary>A request naming no temperature or top_p gets the administrator's, else the model's (when the model samples), else OpenAI's.</summary>
public sealed class SamplingDefaultsTests
{
    private static readonly SearchDefaults Qwen = new(false, 32768, DoSample: true, TopK: 20, TopP: 0.8f, Temperature: 0.7f, RepetitionPenalty: 1.05f);

    [Fact]
    public void The_model_authors_settings_apply_when_the_model_samples()
    {
        var defaults = SamplingDefaults.For(new ModelOptions(), Qwen);

        Assert.Equal((0.7f, 0.8f), (defaults.Temperature, defaults.TopP));
        Assert.Equal((0, 1f), (defaults.TopK, defaults.RepetitionPenalty)); // not taken from the model: see SamplingDefaults
    }

    [Fact]
    public void The_administrators_settings_win_over_the_models()
    {
        var defaults = SamplingDefaults.For(new ModelOptions { DefaultTemperature = 0.2f, DefaultTopP = 0.5f }, Qwen);

        Assert.Equal((0.2f, 0.5f), (defaults.Temperature, defaults.TopP));
    }

    [Fact]
    public void A_model_that_does_not_sample_gets_OpenAIs_defaults()
    {
        var defaults = SamplingDefaults.For(new ModelOptions(), Qwen with { DoSample = false });

        Assert.Equal((1f, 1f, 0, 1f), (defaults.Temperature, defaults.TopP, defaults.TopK, defaults.RepetitionPenalty));
    }
}
