using System.Net;
using System.Text;
using System.Text.Json;
using Appliance.Audit.Content;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Audit;

/// <summary>Models configured to record content keep it encrypted in the chain; destroying the key erases it and the chain still verifies.</summary>
public sealed class ContentRecordingTests : IDisposable
{
    private readonly TempFolder _root = new("content-recording");

    [Fact]
    public async Task Recorded_content_is_sealed_readable_by_auditors_and_erased_with_its_key()
    {
        var model = _root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, model);
        await using var running = await RunningAppliance.StartAsync(
            // A Hugging Face style id: its key file cannot be named after it as it is.
            $"--Models:org/recorded:Path={model}", "--Models:org/recorded:RecordContent=true", $"--Models:plain:Path={model}",
            "--Appliance:BuiltInEmbeddings=false", $"--Appliance:DataFolder={_root.Combine("data")}", "--Logging:LogLevel:Default=None");
        await running.WaitUntilReadyAsync();
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"]));
        foreach (var name in new[] { "org/recorded", "plain" })
        {
            using var response = await ada.PostAsync("/v1/chat/completions", new StringContent(
                $$"""{"model":"{{name}}","messages":[{"role":"user","content":"the quarterly plan"}],"max_tokens":3,"ignore_eos":true}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        using var events = JsonDocument.Parse(await running.Http.GetStringAsync("/audit/events?user=ada&kind=request.completed"));
        var byModel = events.RootElement.GetProperty("data").EnumerateArray().ToDictionary(e => e.GetProperty("model").GetString()!, e => e.Clone());
        Assert.Equal(JsonValueKind.Null, byModel["plain"].GetProperty("content").ValueKind);
        var sealedContent = byModel["org/recorded"].GetProperty("content").GetString()!;
        Assert.DoesNotContain("quarterly", sealedContent, StringComparison.Ordinal);

        var seq = byModel["org/recorded"].GetProperty("seq").GetInt64();
        using (var content = JsonDocument.Parse(await running.Http.GetStringAsync($"/audit/events/{seq}/content")))
        {
            var recorded = content.RootElement.GetProperty("content");
            Assert.Equal("the quarterly plan", recorded.GetProperty("prompt")[0].GetProperty("content").GetString());
            Assert.False(string.IsNullOrEmpty(recorded.GetProperty("completion").GetProperty("0").GetString()));
        }

        Assert.True(new ContentVault(Path.Combine(_root.Combine("data"), "audit", "content-keys")).Destroy("org/recorded"));
        Assert.Equal(HttpStatusCode.Gone, (await running.Http.GetAsync($"/audit/events/{seq}/content")).StatusCode);
        using var verify = JsonDocument.Parse(await running.Http.GetStringAsync("/audit/verify"));
        Assert.True(verify.RootElement.GetProperty("ok").GetBoolean(), verify.RootElement.GetRawText());
        Assert.Equal(HttpStatusCode.NotFound, (await running.Http.GetAsync($"/audit/events/{byModel["plain"].GetProperty("seq").GetInt64()}/content")).StatusCode);

        // The id's '/' in paths: as the SDKs send it, and escaped.
        using (var described = JsonDocument.Parse(await running.Http.GetStringAsync("/v1/models/org/recorded")))
        {
            Assert.Equal("org/recorded", described.RootElement.GetProperty("id").GetString());
        }

        Assert.Equal(HttpStatusCode.OK, (await running.Http.PostAsync("/admin/models/org%2Frecorded/unload", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await running.Http.PostAsync("/admin/models/org/recorded/load", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await running.Http.PostAsync("/admin/models/org/recorded/explode", null)).StatusCode);
    }

    public void Dispose() => _root.Dispose();
}
