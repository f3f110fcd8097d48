using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http.Features;

namespace Appliance.Host.Batches;

/// <summary>
/// The node's server (Kestrel) with a door from inside: a batch's requests enter the very pipeline a caller's request
/// enters (authentication, audit, quotas, metrics, the endpoint), without a socket, a certificate or a token. What
/// comes from the network cannot use this door: it is a feature collection built in this process.
/// </summary>
internal sealed class InProcessServer(IServer network) : IServer
{
    private Func<IFeatureCollection, Func<Task>, Task>? _application;

    public IFeatureCollection Features => network.Features;

    /// <summary>
    /// Runs one request through the application; <paramref name="complete"/> ends its response (as a server does when
    /// the application returns) before the request's context is disposed. Throws until the server has started.
    /// </summary>
    public Task ProcessAsync(IFeatureCollection request, Func<Task> complete) =>
        (_application ?? throw new InvalidOperationException("the server has not started")).Invoke(request, complete);

    public Task StartAsync<TContext>(IHttpApplication<TContext> application, CancellationToken cancellationToken) where TContext : notnull
    {
        _application = async (features, complete) =>
        {
            var context = application.CreateContext(features);
            Exception? failure = null;
            try
            {
                await application.ProcessRequestAsync(context);
            }
            catch (Exception exception)
            {
                failure = exception;
                throw;
            }
            finally
            {
                try
                {
                    await complete();
                }
                finally
                {
                    application.DisposeContext(context, failure);
                }
            }
        };
        return network.StartAsync(application, cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => network.StopAsync(cancellationToken);

    public void Dispose() => network.Dispose();
}
