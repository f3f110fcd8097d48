using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Audit;

/// <summary>
/// A request cut short (the client leaves, the request times out) is audited and charged for the tokens generated until
/// then: only a finished choice reports its usage, and a client must not escape its token quota by hanging up.
/// </summary>
public sealed class CutShortUsageTests : IDisposable
{
    private const int TokensPerDay = 60;

    // Far more than the tiny model generates while a busy CI machine gets round to hanging up: an answer finished before
    // the client left is rightly audited as finished, and the test would prove nothing.
    private const int Budget = 30000;
    private readonly TempFolder _root = new("cut-short");

    [Theory]
    [InlineData("/v1/chat/completions", """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":30000,"temperature":0,"stream":true}""")]
    [InlineData("/v1/chat/completions", """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":15000,"ignore_eos":true,"stream":true,"n":2}""")]
    [InlineData("/v1/messages", """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":30000,"temperature":0,"stream":true}""")]
    [InlineData("/v1/responses", """{"model":"tiny","input":"hi","max_output_tokens":30000,"temperature":0,"stream":true}""")]
    public async Task A_client_that_hangs_up_mid_stream_is_charged_and_audited_for_what_was_generated(string path, string body)
    {
        await using var running = await Start($"--Quotas:User:TokensPerDay={TokensPerDay}");
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"]));

        var received = 0;
        using (var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") })
        using (var response = await ada.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            while (received < 2 * TokensPerDay && await reader.ReadLineAsync() is { } line)
            {
                received += line.StartsWith("data: ", StringComparison.Ordinal) ? 1 : 0;
            }
        } // hangs up with thousands of tokens still to come

        var completed = await CompletedRecordAsync(running, path);
        Assert.Equal("cancelled", completed.GetProperty("finishReason").GetString());
        Assert.InRange(completed.GetProperty("completionTokens").GetInt32(), TokensPerDay, Budget); // at least the events read, less a few framing ones

        using var next = await ada.PostAsync("/v1/chat/completions", new StringContent(
            """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.TooManyRequests, next.StatusCode);
        Assert.Equal("tokens_per_day", next.Headers.GetValues("X-Quota-Name").Single());
    }

    [Fact]
    public async Task A_chat_stream_that_times_out_says_so_in_the_stream_and_is_charged()
    {
        // 1.5 s: long enough for the first tokens on a loaded machine, well short of 8 x 4000 tokens (4 s or more here).
        await using var running = await Start("--Limits:RequestTimeout=00:00:01.5", "--Limits:MaxTokens=4000");
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"]));
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(
                """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":4000,"ignore_eos":true,"stream":true,"n":8}""", Encoding.UTF8, "application/json"),
        };
        using var response = await ada.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var events = (await response.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);

        // Not [DONE] after the last chunk, as if the answer were whole: an error the SDKs raise.
        Assert.DoesNotContain("data: [DONE]", events);
        using (var last = JsonDocument.Parse(events[^1]["data: ".Length..]))
        {
            Assert.Equal("timeout", last.RootElement.GetProperty("error").GetProperty("code").GetString());
        }

        var completed = await CompletedRecordAsync(running, "/v1/chat/completions");
        Assert.Equal("timeout", completed.GetProperty("finishReason").GetString());
        Assert.True(completed.GetProperty("completionTokens").GetInt32() > 0, completed.GetRawText());
    }

    [Fact]
    public async Task An_embeddings_request_that_times_out_is_answered_so_and_charged_for_the_runs_done()
    {
        await using var running = await Start("--Limits:RequestTimeout=00:00:01", "--Appliance:BuiltInEmbeddings=true");
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"]));
        // 2,048 inputs of 60 single letters (a token each): 64 model runs, several seconds of work here.
        var inputs = Enumerable.Range(0, 2048).Select(i => string.Join(' ', Enumerable.Range(0, 60).Select(j => (char)('a' + ((i + j) % 26))))).ToArray();
        using var response = await ada.PostAsync("/v1/embeddings", new StringContent(JsonSerializer.Serialize(new { model = "all-minilm-l6-v2", input = inputs }), Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains("\"timeout\"", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var completed = await CompletedRecordAsync(running, "/v1/embeddings");
        Assert.Equal("timeout", completed.GetProperty("finishReason").GetString());
        Assert.InRange(completed.GetProperty("promptTokens").GetInt32(), 1, (2048 * 62) - 1); // the runs done, not nothing, not all
    }

    [Theory]
    [InlineData("/v1/chat/completions", """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":30000,"ignore_eos":true,"stream":true,"n":4}""")]
    [InlineData("/v1/messages", """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":30000,"temperature":0,"stream":true}""")]
    [InlineData("/v1/responses", """{"model":"tiny","input":"hi","max_output_tokens":30000,"temperature":0,"stream":true}""")]
    public async Task A_stream_whose_client_reads_slowly_still_ends_with_the_timeout_event_not_a_reset(string path, string body)
    {
        // The client reads nothing until well past the timeout, so the server's writes wait on it when the timeout comes.
        // Cancelling a write in progress makes Kestrel abort the connection: the client would read a reset, not the event.
        await using var running = await Start("--Limits:RequestTimeout=00:00:01");
        var token = running.MintToken("ada", ["appliance-user"]);
        using var tcp = new TcpClient { ReceiveBufferSize = 4096 };
        await tcp.ConnectAsync(running.Http.BaseAddress!.Host, running.Http.BaseAddress.Port);
        await using var connection = tcp.GetStream();
        var request = $"POST {path} HTTP/1.1\r\nHost: appliance\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            + $"Content-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\n\r\n{body}";
        await connection.WriteAsync(Encoding.UTF8.GetBytes(request));
        await Task.Delay(TimeSpan.FromSeconds(4));

        using var reading = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var received = new MemoryStream();
        await connection.CopyToAsync(received, reading.Token); // a reset throws here
        var text = Encoding.UTF8.GetString(received.ToArray());

        Assert.StartsWith("HTTP/1.1 200", text, StringComparison.Ordinal);
        Assert.Contains("The request took longer than the configured request timeout.", text, StringComparison.Ordinal);
        Assert.DoesNotContain("data: [DONE]", text, StringComparison.Ordinal);
        Assert.Equal("timeout", (await CompletedRecordAsync(running, path)).GetProperty("finishReason").GetString());
    }

    [Theory]
    [InlineData("/v1/chat/completions", """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":30000,"ignore_eos":true,"stream":true}""")]
    [InlineData("/v1/messages", """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":30000,"temperature":0,"stream":true}""")]
    [InlineData("/v1/responses", """{"model":"tiny","input":"hi","max_output_tokens":30000,"temperature":0,"stream":true}""")]
    public async Task A_stream_whose_client_stopped_reading_is_ended_a_grace_after_the_timeout_and_frees_its_stream_quota(string path, string body)
    {
        // The client reads nothing. On a Unix socket the kernel holds under 100 KB for it (TCP on loopback grows its
        // buffer to megabytes) and the server's response buffer is 1 KB: the server's writes soon wait on the client
        // (the tiny model writes that much in well under a second), and so would the timeout event. Kestrel's minimum
        // data rate would end the request only after minutes; until then it would hold the caller's one concurrent
        // stream and have no audit record. ("Tcp" sorts first: the test's HTTP client, for the audit, uses it.)
        var socket = Path.Combine(Path.GetTempPath(), $"appliance-{Guid.NewGuid():N}"[..20] + ".sock"); // sun_path holds 108 bytes
        using var removeSocket = new DeleteOnDispose(socket);
        await using var running = await Start(
            "--Limits:RequestTimeout=00:00:05", "--Limits:RequestTimeoutGrace=00:00:01", "--Quotas:User:ConcurrentStreams=1",
            "--Kestrel:Limits:MaxResponseBufferSize=1024",
            "--Kestrel:Endpoints:Tcp:Url=http://127.0.0.1:0", $"--Kestrel:Endpoints:Unix:Url=http://unix:{socket}");
        var token = running.MintToken("ada", ["appliance-user"]);
        using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await client.ConnectAsync(new UnixDomainSocketEndPoint(socket));
        await using var connection = new NetworkStream(client, ownsSocket: false);
        var request = $"POST {path} HTTP/1.1\r\nHost: appliance\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            + $"Content-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\n\r\n{body}";
        await connection.WriteAsync(Encoding.UTF8.GetBytes(request));

        var completed = await CompletedRecordAsync(running, path, TimeSpan.FromSeconds(30));
        Assert.Equal("timeout", completed.GetProperty("finishReason").GetString());
        Assert.True(completed.GetProperty("completionTokens").GetInt32() > 0, completed.GetRawText());

        // The connection was closed: what the client had not read ends (or is reset) instead of waiting for more.
        using var reading = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var received = new MemoryStream();
        try
        {
            await connection.CopyToAsync(received, reading.Token);
        }
        catch (IOException)
        {
            // A reset is a closed connection too.
        }

        var text = Encoding.UTF8.GetString(received.ToArray());
        Assert.False(reading.IsCancellationRequested, "the server kept the connection of a client that stopped reading open");
        Assert.DoesNotContain("data: [DONE]", text, StringComparison.Ordinal);

        // Its stream no longer counts against the caller's one concurrent stream.
        using var ada = running.ClientWith(token);
        using var next = await ada.PostAsync("/v1/chat/completions", new StringContent(
            """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"stream":true}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    private static async Task<JsonElement> CompletedRecordAsync(RunningAppliance running, string path, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            using var events = JsonDocument.Parse(await running.Http.GetStringAsync("/audit/events?user=ada&kind=request.completed"));
            foreach (var record in events.RootElement.GetProperty("data").EnumerateArray())
            {
                if (record.GetProperty("endpoint").GetString() == path)
                {
                    return record.Clone();
                }
            }

            Assert.True(DateTime.UtcNow < deadline, $"no completed record for {path}");
            await Task.Delay(50);
        }
    }

    private async Task<RunningAppliance> Start(params string[] args)
    {
        var model = _root.Combine("tiny");
        if (!Directory.Exists(model))
        {
            SyntheticModelFolder.Write(SyntheticModelSpec.Tiny with { ContextLength = Budget + 256 }, model);
        }

        var running = await RunningAppliance.StartAsync(
            [$"--Models:tiny:Path={model}", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None", $"--Limits:MaxTokens={Budget}", .. args]);
        await running.WaitUntilReadyAsync();
        return running;
    }

    public void Dispose() => _root.Dispose();

    private sealed class DeleteOnDispose(string path) : IDisposable
    {
        public void Dispose() => File.Delete(path);
    }
}
