namespace Appliance.IntegrationTests.Deployment;

/// <summary>
/// A bearer token that is fetched again once it is older than <c>renewAfter</c>, as an SDK with client credentials
/// does: a playbook can run longer than a token lives (five minutes, Keycloak's default), and a load that kept its
/// first token would fail with 401s that say nothing about the playbook.
/// </summary>
internal sealed class RenewingToken(Func<Task<string>> fetch, TimeSpan renewAfter) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private string? _token;
    private DateTime _fetchedAt;

    public async Task<string> CurrentAsync()
    {
        await _gate.WaitAsync();
        try
        {
            if (_token is null || DateTime.UtcNow - _fetchedAt > renewAfter)
            {
                _token = await fetch();
                _fetchedAt = DateTime.UtcNow;
            }

            return _token;
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose() => _gate.Dispose();
}
