using System.Net;
using Appliance.Api.Audit;
using Microsoft.AspNetCore.Http.Features;

namespace Appliance.Host.Batches;

/// <summary>What an in-process request was answered.</summary>
internal sealed record InProcessAnswer(int Status, IHeaderDictionary Headers, byte[] Body, string RequestId);

/// <summary>Sends a batch's request through the node's own pipeline as the batch's creator (see <see cref="InProcessServer"/>).</summary>
internal sealed class InProcessRequests(InProcessServer server, TimeProvider time)
{
    public async Task<InProcessAnswer> SendAsync(BatchCaller caller, string path, byte[] body, string? sourceIp, CancellationToken cancellation)
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
        request.Headers.Host = "localhost";
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
            await server.ProcessAsync(features);
            await response.CompleteAsync();
        }
        catch (Exception exception) when (!cancellation.IsCancellationRequested)
        {
            // What a server answers when the pipeline throws: a 500 (the request's own result, not the batch's end).
            return new InProcessAnswer(StatusCodes.Status500InternalServerError, new HeaderDictionary(),
                System.Text.Encoding.UTF8.GetBytes(new System.Text.Json.Nodes.JsonObject
                {
                    ["error"] = new System.Text.Json.Nodes.JsonObject { ["message"] = $"The appliance failed to process the request: {exception.Message}", ["type"] = "server_error", ["code"] = "internal_error" },
                }.ToJsonString()), identifier.TraceIdentifier);
        }
        finally
        {
            await response.CompletedAsync();
        }

        return new InProcessAnswer(response.StatusCode, response.Headers, response.Content, identifier.TraceIdentifier);
    }
}
