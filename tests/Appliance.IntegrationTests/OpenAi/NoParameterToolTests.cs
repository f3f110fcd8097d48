using System.Net;
using System.Text;
using System.Text.Json;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>
/// A required call of a function that takes no parameters (<c>{"type":"object","properties":{}}</c>: any object): with
/// parallel calls allowed (the default), eight copies of an any-object automaton did not fit, and the request was
/// refused as too large. The answer may now hold fewer calls instead.
/// </summary>
[Collection(ApplianceServerCollection.Name)]
public sealed class NoParameterToolTests(ApplianceServer server)
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_required_call_of_a_function_without_parameters_is_enforced(bool parallel)
    {
        var body = JsonSerializer.Serialize(new
        {
            model = ApplianceServer.Model,
            messages = new[] { new { role = "user", content = "What time is it?" } },
            max_tokens = 60,
            temperature = 1,
            seed = 7,
            tool_choice = "required",
            parallel_tool_calls = parallel,
            tools = new[] { new { type = "function", function = new { name = "now", parameters = new { type = "object", properties = new { } } } } },
        });

        using var response = await server.Http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();

        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        var choice = JsonDocument.Parse(text).RootElement.GetProperty("choices")[0];
        var calls = choice.GetProperty("message").GetProperty("tool_calls").EnumerateArray().ToList();
        Assert.NotEmpty(calls);
        Assert.All(calls, call => Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(call.GetProperty("function").GetProperty("arguments").GetString()!).RootElement.ValueKind));
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
    }
}
