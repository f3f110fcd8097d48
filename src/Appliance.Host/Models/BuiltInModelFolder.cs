namespace Appliance.Host.Models;

/// <summary>
/// Where the models the service writes itself (the packaged embedding model, the demo model) live: in the data folder,
/// apart from <c>&lt;data&gt;/models</c>, which the Ansible models role owns (root-owned, not writable by the service,
/// so that a node cannot alter the models it serves). Before, they were unpacked there, which failed once the role had
/// run: switching the demo model or the embeddings on after the first install stopped the service.
/// </summary>
internal static class BuiltInModelFolder
{
    public static string For(string dataFolder, string modelId) => Path.GetFullPath(Path.Combine(dataFolder, "built-in", modelId));
}
