using Appliance.Identity.ApiKeys;

namespace Appliance.Host.Identity;

/// <summary>
/// Opens the API key table while the host starts (when keys are enabled), so that an unreachable database stops
/// start-up with its error instead of failing the first request that carries a key.
/// </summary>
internal sealed class ApiKeyTableOpener(IServiceProvider services) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        services.GetRequiredService<ApiKeyStore>();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
