namespace Appliance.Host;

/// <summary>A setting that cannot work, found while the node is put together: the start stops naming it (exit 78).</summary>
public sealed class SettingsException(string message) : Exception(message);
