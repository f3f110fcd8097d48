using System.Diagnostics;
using System.Text.Json;

namespace Appliance.Tests.Common;

/// <summary>
/// Cohere's official TypeScript SDK (cohere-ai, from tests/clients-js, installed by tests/setup.sh with npm ci),
/// reranking against a running appliance through tests/clients-js/rerank.mjs.
/// </summary>
public static class CohereSdk
{
    /// <summary>What the SDK parsed from the answer, or {"error": {status, body}} when it raised an error.</summary>
    public static async Task<JsonElement> RerankAsync(Uri baseUrl, string token, string version, string model, string query, IReadOnlyList<string> documents, int? topN = null, bool? returnDocuments = null)
    {
        var folder = Path.Combine(RepositoryPaths.Root, "tests", "clients-js");
        if (!Directory.Exists(Path.Combine(folder, "node_modules", "cohere-ai")))
        {
            throw new FileNotFoundException($"cohere-ai is missing from {folder}/node_modules (tests/setup.sh installs it with npm ci)");
        }

        var start = new ProcessStartInfo("node", ["rerank.mjs"])
        {
            WorkingDirectory = folder,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardInputEncoding = new System.Text.UTF8Encoding(false),
            StandardOutputEncoding = System.Text.Encoding.UTF8,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start node");
        await process.StandardInput.WriteAsync(JsonSerializer.Serialize(new { baseUrl = baseUrl.ToString().TrimEnd('/'), token, version, model, query, documents, topN, returnDocuments }));
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await process.WaitForExitAsync(timeout.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"rerank.mjs failed ({process.ExitCode}): {await stderr}");
        }

        return JsonDocument.Parse(await stdout).RootElement.Clone();
    }
}
