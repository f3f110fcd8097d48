using System.Net;
using Appliance.Api.Audit;
using Microsoft.AspNetCore.Http.Features;

namespace Appliance.Host.Batches;

/// <summary>What an in-process request was answered.</summary>
internal sealed record InProcessAnswer(int Status, IHeaderDictionary Headers, byte[] Body, string RequestId);

/// <summary>Sends a batch's request through the node's own pipeline as the batch's creator (see <see cref="InProcessServer"/>).</summary>
internal sealed partial class InProcessRequests(InProcessServer server, TimeProvider time, ILogger<InProcessRequests> logger)
{
    /// <summary>The answer given for a request cut short by <c>cancellation</c>: not an answer to keep.</summary>
    public const int Aborted = 499;

    /// <param name="host">The Host the batch's creator called (so that host filtering lets its requests in too).</param>
    public async Task<InProcessAnswer> SendAsync(BatchCaller caller, string path, byte[] body, string? sourceIp, string? host, CancellationToken cancellation)
    {
        var features = new FeatureCollection();
        var request = new HttpRequestFeature
        {
            Protocol = "HTTP/1.1",
            Scheme = "http",
            Method = HttpMethods.Post,
            PathBase = string.Empty,
            Path = path,
            QueryString = string.Empty,
            RawTarget = path,
            Body = new MemoryStream(body, writable: false),
        };
        request.Headers.Host = string.IsNullOrEmpty(host) ? "localhost" : host;
        request.Headers.ContentType = "application/json";
        request.Headers.ContentLength = body.Length;
        features.Set<IHttpRequestFeature>(request);
        var response = new InProcessResponse();
        features.Set<IHttpResponseFeature>(response);
        features.Set<IHttpResponseBodyFeature>(response);
        features.Set<IHttpRequestLifetimeFeature>(new HttpRequestLifetimeFeature { RequestAborted = cancellation });
        features.Set<IHttpConnectionFeature>(new HttpConnectionFeature
        {
            ConnectionId = $"batch-{caller.BatchId}",
            // The audit's "from where": the batch's creator's address, where the work was asked for.
            RemoteIpAddress = IPAddress.TryParse(sourceIp, out var address) ? address : IPAddress.Loopback,
            LocalIpAddress = IPAddress.Loopback,
        });
        var identifier = new HttpRequestIdentifierFeature();
        features.Set<IHttpRequestIdentifierFeature>(identifier);
        features.Set(caller);
        features.Set(new Api.Batches.BatchRequest());
        var audit = new RequestAudit(time.GetTimestamp()) { Origin = $"batch {caller.BatchId} line {caller.Line + 1} ({caller.CustomId})" };
        features.Set(audit);

        try
        {
            await server.ProcessAsync(features, async () =>
            {
                await response.CompleteAsync();
                try
                {
                    await response.CompletedAsync();
                }
                catch (Exception exception)
                {
                    // As a server does: the answer is given; a callback's failure is logged, not the request's.
                    LogCallbackFailed(logger, exception, identifier.TraceIdentifier);
                }
            });
        }
        catch (Exception) when (cancellation.IsCancellationRequested)
        {
            return new InProcessAnswer(Aborted, new HeaderDictionary(), [], identifier.TraceIdentifier);
        }
        catch (Exception exception)
        {
            // What a server answers when the pipeline throws: a 500 (the request's own result, not the batch's end).
            return new InProcessAnswer(StatusCodes.Status500InternalServerError, new HeaderDictionary(),
                System.Text.Encoding.UTF8.GetBytes(new System.Text.Json.Nodes.JsonObject
                {
                    ["error"] = new System.Text.Json.Nodes.JsonObject { ["message"] = $"The appliance failed to process the request: {exception.Message}", ["type"] = "server_error", ["code"] = "internal_error" },
                }.ToJsonString()), identifier.TraceIdentifier);
        }

        return new InProcessAnswer(cancellation.IsCancellationRequested ? Aborted : response.StatusCode, response.Headers, response.Content, identifier.TraceIdentifier);
    }

    [LoggerMessage(EventId = 7008, Level = LogLevel.Warning, Message = "A completion callback of the batch request {RequestId} failed")]
    private static partial void LogCallbackFailed(ILogger logger, Exception exception, string requestId);
}
