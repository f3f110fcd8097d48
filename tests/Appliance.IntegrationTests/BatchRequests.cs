using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Appliance.Api.Batches;

namespace Appliance.IntegrationTests;

/// <summary>A batch over plain HTTP, as the SDKs send it: its input uploaded, the batch created, followed until a state.</summary>
internal static class BatchRequests
{
    /// <summary>Uploads one request per body (custom ids <paramref name="prefix"/>0, 1...) and creates the batch; its id.</summary>
    public static async Task<string> CreateAsync(HttpClient client, string endpoint, IEnumerable<object> bodies, string prefix = "r")
    {
        var input = string.Join("\n", bodies.Select((body, i) => JsonSerializer.Serialize(new { custom_id = $"{prefix}{i}", method = "POST", url = endpoint, body })));
        using var form = new MultipartFormDataContent { { new StringContent("batch"), "purpose" }, { new ByteArrayContent(Encoding.UTF8.GetBytes(input)), "file", "input.jsonl" } };
        using var uploaded = JsonDocument.Parse(await (await client.PostAsync("/v1/files", form)).EnsureSuccessStatusCode().Content.ReadAsStringAsync());
        using var created = JsonDocument.Parse(await (await client.PostAsJsonAsync("/v1/batches", new
        {
            input_file_id = uploaded.RootElement.GetProperty("id").GetString(),
            endpoint,
            completion_window = "24h",
        })).EnsureSuccessStatusCode().Content.ReadAsStringAsync());
        Assert.Equal("validating", created.RootElement.GetProperty("status").GetString());
        return created.RootElement.GetProperty("id").GetString()!;
    }

    /// <summary>The batch once <paramref name="until"/> holds for it (a minute at most).</summary>
    public static async Task<JsonElement> WaitAsync(HttpClient client, string id, Func<JsonElement, bool> until)
    {
        for (var attempt = 0; ; attempt++)
        {
            using var state = JsonDocument.Parse(await client.GetStringAsync($"/v1/batches/{id}"));
            if (until(state.RootElement))
            {
                return state.RootElement.Clone();
            }

            Assert.True(attempt < 600, $"batch {id}: {state.RootElement.GetRawText()}");
            await Task.Delay(100);
        }
    }

    public static Task<JsonElement> EndAsync(HttpClient client, string id) => WaitAsync(client, id, Ended);

    public static bool Ended(JsonElement batch) => BatchStatus.IsFinal(batch.GetProperty("status").GetString()!);

    public static int Count(JsonElement batch, string which) => batch.GetProperty("request_counts").GetProperty(which).GetInt32();

    /// <summary>The lines of an output or error file.</summary>
    public static async Task<List<JsonElement>> LinesAsync(HttpClient client, string fileId) =>
        [.. (await client.GetStringAsync($"/v1/files/{fileId}/content")).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())];
}
