using Microsoft.Extensions.Logging;

namespace Appliance.Tests.Common;

/// <summary>Hands every category the same <see cref="ListLogger"/>: added to a running host's logger factory, it sees what the host logs from then on.</summary>
public sealed class ListLoggerProvider : ILoggerProvider
{
    public ListLogger Logger { get; } = new();

    public ILogger CreateLogger(string categoryName) => Logger;

    public void Dispose()
    {
    }
}
