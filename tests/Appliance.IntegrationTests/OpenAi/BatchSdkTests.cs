using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Batch;
using OpenAI.Files;

#pragma warning disable OPENAI001 // the SDK's batch client is marked experimental

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>
/// The Batch API through OpenAI's own SDK: a JSON Lines file uploaded, a batch created from it, its requests run in the
/// background as their creator (each audited, an unknown model failing alone), the results downloaded.
/// </summary>
[Collection(ApplianceServerCollection.Name)]
public sealed class BatchSdkTests(ApplianceServer server)
{
    private OpenAIClient Client(string? token = null) => new(new ApiKeyCredential(token ?? server.Token), new OpenAIClientOptions { Endpoint = server.ApiBase });

    private static string Line(string id, object body, string url = "/v1/chat/completions") =>
        JsonSerializer.Serialize(new { custom_id = id, method = "POST", url, body });

    private static object Chat(string text, string model = "tiny", int maxTokens = 6) =>
        new { model, messages = new[] { new { role = "user", content = text } }, temperature = 0, max_tokens = maxTokens };

    [Fact]
    public async Task A_batch_answers_each_request_as_it_would_be_answered_alone_and_puts_failures_in_the_error_file()
    {
        var files = Client().GetOpenAIFileClient();
        var input = string.Join("\n", Line("first", Chat("Tell me about the sea")), Line("second", Chat("What is a kettle?")),
            Line("missing-model", Chat("hello", model: "no-such-model")), Line("third", Chat("Count to three"))) + "\n";
        var uploaded = await files.UploadFileAsync(BinaryData.FromString(input), "requests.jsonl", FileUploadPurpose.Batch);
        Assert.Equal("requests.jsonl", uploaded.Value.Filename);
        Assert.Equal(Encoding.UTF8.GetByteCount(input), uploaded.Value.SizeInBytes);
        var before = await MetricsAsync();

        var batch = await RunToEndAsync(uploaded.Value.Id, "/v1/chat/completions");

        Assert.Equal("completed", batch.GetProperty("status").GetString());
        var counts = batch.GetProperty("request_counts");
        Assert.Equal((4, 3, 1), (counts.GetProperty("total").GetInt32(), counts.GetProperty("completed").GetInt32(), counts.GetProperty("failed").GetInt32()));
        var output = await DownloadLinesAsync(batch.GetProperty("output_file_id").GetString()!);
        Assert.Equal(["first", "second", "third"], output.Select(o => o.GetProperty("custom_id").GetString()));
        var usage = batch.GetProperty("usage");
        Assert.Equal(output.Sum(o => o.GetProperty("response").GetProperty("body").GetProperty("usage").GetProperty("prompt_tokens").GetInt32()), usage.GetProperty("input_tokens").GetInt32());
        Assert.Equal(output.Sum(o => o.GetProperty("response").GetProperty("body").GetProperty("usage").GetProperty("completion_tokens").GetInt32()), usage.GetProperty("output_tokens").GetInt32());
        Assert.Equal(usage.GetProperty("input_tokens").GetInt32() + usage.GetProperty("output_tokens").GetInt32(), usage.GetProperty("total_tokens").GetInt32());
        Assert.True(usage.GetProperty("output_tokens").GetInt32() > 0);
        foreach (var (line, text) in output.Zip(new[] { "Tell me about the sea", "What is a kettle?", "Count to three" }))
        {
            Assert.Equal(200, line.GetProperty("response").GetProperty("status_code").GetInt32());
            Assert.Equal(JsonValueKind.Null, line.GetProperty("error").ValueKind);
            var alone = await server.Http.PostAsync("/v1/chat/completions", new StringContent(JsonSerializer.Serialize(Chat(text)), Encoding.UTF8, "application/json"));
            using var aloneAnswer = JsonDocument.Parse(await alone.Content.ReadAsStringAsync());
            Assert.Equal(Content(aloneAnswer.RootElement), Content(line.GetProperty("response").GetProperty("body")));
        }

        var errors = await DownloadLinesAsync(batch.GetProperty("error_file_id").GetString()!);
        var failed = Assert.Single(errors);
        Assert.Equal("missing-model", failed.GetProperty("custom_id").GetString());
        Assert.Equal(404, failed.GetProperty("response").GetProperty("status_code").GetInt32());
        Assert.Equal("model_not_found", failed.GetProperty("response").GetProperty("body").GetProperty("error").GetProperty("code").GetString());

        // The runner's own metrics count what came of them (at least: the meters are the test process's, and appliances
        // of other test classes run batches at the same time).
        var after = await MetricsAsync();
        Assert.True(Sample(after, "appliance_batches_finished_total", "status=\"completed\"") - Sample(before, "appliance_batches_finished_total", "status=\"completed\"") >= 1);
        Assert.True(Sample(after, "appliance_batch_requests_total", "outcome=\"answered\"") - Sample(before, "appliance_batch_requests_total", "outcome=\"answered\"") >= 3);
        Assert.True(Sample(after, "appliance_batch_requests_total", "outcome=\"error\"") - Sample(before, "appliance_batch_requests_total", "outcome=\"error\"") >= 1);

        // Each request is in the audit log as its creator's, naming the batch and line.
        var requestId = output[1].GetProperty("response").GetProperty("request_id").GetString()!;
        var record = await AuditRecordAsync(requestId, "request.completed");
        Assert.Equal("tester", record.GetProperty("username").GetString());
        Assert.Equal("tiny", record.GetProperty("model").GetString());
        Assert.StartsWith($"batch {batch.GetProperty("id").GetString()} line 2 (second)", record.GetProperty("detail").GetString());
        Assert.True(record.GetProperty("completionTokens").GetInt32() > 0);
    }

    [Fact]
    public async Task A_file_that_is_not_batch_input_is_refused_at_upload_naming_the_line()
    {
        using var content = new MultipartFormDataContent
        {
            { new StringContent("batch"), "purpose" },
            { new ByteArrayContent(Encoding.UTF8.GetBytes(Line("a", Chat("x")) + "\n{\"custom_id\":\"b\",\"method\":\"GET\",\"url\":\"/v1/chat/completions\",\"body\":{}}\nnot json\n")), "file", "bad.jsonl" },
        };

        using var answer = await server.Http.PostAsync("/v1/files", content);

        Assert.Equal(HttpStatusCode.BadRequest, answer.StatusCode);
        using var error = JsonDocument.Parse(await answer.Content.ReadAsStringAsync());
        var message = error.RootElement.GetProperty("error").GetProperty("message").GetString()!;
        Assert.Contains("2 problems", message);
        Assert.Contains("Line 2: method must be \"POST\"", message);
        Assert.Contains("Line 3 is not a JSON object", message);
    }

    [Fact]
    public async Task An_input_file_may_be_larger_than_a_request_body_but_each_of_its_bodies_may_not()
    {
        // The server's body limit is 64 KiB: the file is four times that, its bodies each far below.
        var lines = Enumerable.Range(0, 400).Select(i => Line($"n{i}", Chat(new string('x', 600) + i))).ToList();
        var large = string.Join("\n", lines);
        Assert.True(Encoding.UTF8.GetByteCount(large) > 4 * ApplianceServer.BodyLimit);
        var uploaded = await Client().GetOpenAIFileClient().UploadFileAsync(BinaryData.FromString(large), "large.jsonl", FileUploadPurpose.Batch);
        Assert.Equal(Encoding.UTF8.GetByteCount(large), uploaded.Value.SizeInBytes);
        Assert.Equal(large, (await Client().GetOpenAIFileClient().DownloadFileAsync(uploaded.Value.Id)).Value.ToString());

        using var content = new MultipartFormDataContent
        {
            { new StringContent("batch"), "purpose" },
            { new ByteArrayContent(Encoding.UTF8.GetBytes(lines[0] + "\n" + Line("huge", Chat(new string('y', (int)ApplianceServer.BodyLimit))))), "file", "huge.jsonl" },
        };
        using var refused = await server.Http.PostAsync("/v1/files", content);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains($"Line 2: its body is larger than the {ApplianceServer.BodyLimit} bytes", await refused.Content.ReadAsStringAsync());
        await Client().GetOpenAIFileClient().DeleteFileAsync(uploaded.Value.Id);
        using var gone = await server.Http.GetAsync($"/v1/files/{uploaded.Value.Id}");
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task A_batch_whose_lines_call_another_endpoint_fails_validation_with_the_lines_named()
    {
        var files = Client().GetOpenAIFileClient();
        var input = Line("chat", Chat("hi")) + "\n" + Line("emb", new { model = "tiny", input = "x" }, "/v1/embeddings") + "\n";
        var uploaded = await files.UploadFileAsync(BinaryData.FromString(input), "mixed.jsonl", FileUploadPurpose.Batch);

        var batch = await RunToEndAsync(uploaded.Value.Id, "/v1/chat/completions");

        Assert.Equal("failed", batch.GetProperty("status").GetString());
        var problem = Assert.Single(batch.GetProperty("errors").GetProperty("data").EnumerateArray());
        Assert.Equal(("mismatched_url", 2), (problem.GetProperty("code").GetString(), problem.GetProperty("line").GetInt32()));
        Assert.Equal(JsonValueKind.Null, batch.GetProperty("output_file_id").ValueKind);
    }

    [Fact]
    public async Task Files_and_batches_are_their_owners_only()
    {
        var files = Client().GetOpenAIFileClient();
        var uploaded = await files.UploadFileAsync(BinaryData.FromString(Line("only", Chat("mine")) + "\n"), "mine.jsonl", FileUploadPurpose.Batch);
        var created = await Client().GetBatchClient().CreateBatchAsync(BinaryContent.Create(BinaryData.FromObjectAsJson(
            new { input_file_id = uploaded.Value.Id, endpoint = "/v1/chat/completions", completion_window = "24h" })), waitUntilCompleted: false);
        using var other = server.Running.ClientWith(server.Running.MintToken("someone-else", ["appliance-user"]));

        foreach (var path in new[] { $"/v1/files/{uploaded.Value.Id}", $"/v1/files/{uploaded.Value.Id}/content", $"/v1/batches/{created.BatchId}" })
        {
            using var answer = await other.GetAsync(path);
            Assert.Equal(HttpStatusCode.NotFound, answer.StatusCode);
        }

        using var theirs = JsonDocument.Parse(await other.GetStringAsync("/v1/files"));
        Assert.DoesNotContain(theirs.RootElement.GetProperty("data").EnumerateArray(), f => f.GetProperty("id").GetString() == uploaded.Value.Id);
        using var stolen = await other.PostAsync("/v1/batches", new StringContent(JsonSerializer.Serialize(
            new { input_file_id = uploaded.Value.Id, endpoint = "/v1/chat/completions", completion_window = "24h" }), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.NotFound, stolen.StatusCode);
        // Nor may anyone else delete or cancel them.
        using (var deleting = await other.DeleteAsync($"/v1/files/{uploaded.Value.Id}"))
        using (var cancelling = await other.PostAsync($"/v1/batches/{created.BatchId}/cancel", null))
        {
            Assert.Equal((HttpStatusCode.NotFound, HttpStatusCode.NotFound), (deleting.StatusCode, cancelling.StatusCode));
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await created.WaitForCompletionAsync(cts.Token);
        Assert.Equal("completed", (await BatchRequests.EndAsync(server.Http, created.BatchId)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_cancelled_batch_stops_and_reports_the_requests_it_did_not_run()
    {
        var files = Client().GetOpenAIFileClient();
        var input = string.Join("\n", Enumerable.Range(0, 40).Select(i => Line($"long-{i}", Chat($"Story number {i}", maxTokens: 400))));
        var uploaded = await files.UploadFileAsync(BinaryData.FromString(input), "long.jsonl", FileUploadPurpose.Batch);
        var created = await Client().GetBatchClient().CreateBatchAsync(BinaryContent.Create(BinaryData.FromObjectAsJson(
            new { input_file_id = uploaded.Value.Id, endpoint = "/v1/chat/completions", completion_window = "24h", metadata = new { job = "nightly" } })), waitUntilCompleted: false);

        // Its input cannot go while it runs: the answers are written in its order.
        using (var deleting = await server.Http.DeleteAsync($"/v1/files/{uploaded.Value.Id}"))
        {
            Assert.Equal(HttpStatusCode.Conflict, deleting.StatusCode);
            Assert.Contains("file_in_use", await deleting.Content.ReadAsStringAsync());
        }

        await created.CancelAsync(new RequestOptions());
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await created.WaitForCompletionAsync(cts.Token);

        using var final = JsonDocument.Parse((await created.GetBatchAsync(new RequestOptions())).GetRawResponse().Content.ToString());
        var batch = final.RootElement;
        Assert.Equal("cancelled", batch.GetProperty("status").GetString());
        Assert.Equal("nightly", batch.GetProperty("metadata").GetProperty("job").GetString());
        Assert.NotEqual(JsonValueKind.Null, batch.GetProperty("cancelling_at").ValueKind);
        var done = batch.GetProperty("request_counts").GetProperty("completed").GetInt32() + batch.GetProperty("request_counts").GetProperty("failed").GetInt32();
        Assert.True(done < 40, $"{done} of 40 requests ran although the batch was cancelled at once");
        var notRun = await DownloadLinesAsync(batch.GetProperty("error_file_id").GetString()!);
        Assert.Equal(40 - done, notRun.Count(l => l.GetProperty("error").ValueKind == JsonValueKind.Object && l.GetProperty("error").GetProperty("code").GetString() == "batch_cancelled"));
    }

    [Fact]
    public async Task An_administrator_sees_every_owners_batches_and_cancels_one()
    {
        using var user = server.Running.ClientWith(server.Running.MintToken("night-shift", ["appliance-user"]));
        var id = await BatchRequests.CreateAsync(user, "/v1/chat/completions", Enumerable.Range(0, 30).Select(i => Chat($"long {i}", maxTokens: 400)));

        using var listed = JsonDocument.Parse(await server.Http.GetStringAsync("/admin/batches?owner=night-shift"));
        var seen = Assert.Single(listed.RootElement.GetProperty("data").EnumerateArray());
        Assert.Equal((id, "night-shift"), (seen.GetProperty("id").GetString(), seen.GetProperty("owner").GetString()));
        using var byUser = await user.GetAsync("/admin/batches");
        Assert.Equal(HttpStatusCode.Forbidden, byUser.StatusCode);

        using var cancel = await server.Http.PostAsync($"/admin/batches/{id}/cancel", null);
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        Assert.Equal("cancelled", (await BatchRequests.EndAsync(user, id)).GetProperty("status").GetString());

        using var again = await server.Http.PostAsync($"/admin/batches/{id}/cancel", null);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode); // cancelling a cancelled batch is no error
        using var unknown = await server.Http.PostAsync("/admin/batches/batch_nope/cancel", null);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("application/problem+json", unknown.Content.Headers.ContentType?.MediaType);
    }

    /// <summary>Creates the batch with the SDK and waits (as the SDK does, polling) until it has ended; its final JSON.</summary>
    private async Task<JsonElement> RunToEndAsync(string fileId, string endpoint)
    {
        var created = await Client().GetBatchClient().CreateBatchAsync(BinaryContent.Create(BinaryData.FromObjectAsJson(
            new { input_file_id = fileId, endpoint, completion_window = "24h" })), waitUntilCompleted: false);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await created.WaitForCompletionAsync(cts.Token);
        using var final = JsonDocument.Parse((await created.GetBatchAsync(new RequestOptions())).GetRawResponse().Content.ToString());
        return final.RootElement.Clone();
    }

    private async Task<List<JsonElement>> DownloadLinesAsync(string fileId)
    {
        var content = await Client().GetOpenAIFileClient().DownloadFileAsync(fileId);
        return [.. content.Value.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())];
    }

    private async Task<string[]> MetricsAsync() => (await server.Http.GetStringAsync("/metrics")).Split('\n');

    /// <summary>A sample's value (0 when not exported yet): the line of <paramref name="name"/> whose labels hold <paramref name="label"/>.</summary>
    private static double Sample(string[] metrics, string name, string label) =>
        metrics.Where(l => (l.StartsWith(name + "{", StringComparison.Ordinal) || l.StartsWith(name + " ", StringComparison.Ordinal)) && l.Contains(label, StringComparison.Ordinal))
            .Select(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Sum();

    private static string? Content(JsonElement completion) => completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();

    private async Task<JsonElement> AuditRecordAsync(string requestId, string kind)
    {
        for (var attempt = 0; ; attempt++)
        {
            using var events = JsonDocument.Parse(await server.Http.GetStringAsync($"/audit/events?kind={kind}&limit=1000"));
            foreach (var record in events.RootElement.GetProperty("data").EnumerateArray())
            {
                if (record.GetProperty("requestId").GetString() == requestId)
                {
                    return record.Clone();
                }
            }

            Assert.True(attempt < 200, $"no {kind} record for request {requestId}");
            await Task.Delay(50);
        }
    }
}
