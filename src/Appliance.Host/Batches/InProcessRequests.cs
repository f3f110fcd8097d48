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
        var audit = new RequestAudit(time.GetTimestamp()) { Origin = $"batch {caller.BatchId} line {caller.Line + 1} ({caller.CustomId})" };
        features.Set(audit);

        await server.ProcessAsync(features);
        await response.CompleteAsync();
        await response.CompletedAsync();
        return new InProcessAnswer(response.StatusCode, response.Headers, response.Content, identifier.TraceIdentifier);
    }
}
