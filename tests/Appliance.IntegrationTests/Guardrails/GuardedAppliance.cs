using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Guardrails;

/// <summary>
/// One appliance serving the same synthetic model under three ids, so that answers compare exactly: "open" without
/// rules, "guarded" (card numbers in prompts refused but from the group /fraud, emails masked, an answer ends at its
/// first letter e), "masked" (named by its alias in its rule)
/// (every vowel of an answer masked); the built-in embedder masks emails too.
/// </summary>
public sealed class GuardedAppliance : IAsyncLifetime
{
    public const string Embedder = Appliance.Runtime.Onnx.Embeddings.MiniLmPackage.ModelId;

    private readonly TempFolder _root = new("guardrails");
    private RunningAppliance? _running;

    internal RunningAppliance Running => _running ?? throw new InvalidOperationException("the server has not started");

    public async Task InitializeAsync()
    {
        var folder = _root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, folder);
        string[] models = ["open", "guarded", "masked"];
        _running = await RunningAppliance.StartAsync(
        [
            $"--Appliance:DataFolder={_root.Combine("data")}",
            .. models.SelectMany(m => new[] { $"--Models:{m}:Path={folder}", $"--Models:{m}:IntraOpThreads=1" }),
            "--Models:masked:Aliases:0=masked-alias", "--Batches:PollInterval=00:00:00.200",
            "--Guardrails:Rules:0:Name=cards", "--Guardrails:Rules:0:Detector=CreditCard", "--Guardrails:Rules:0:Applies=Input",
            "--Guardrails:Rules:0:Models:0=guarded", "--Guardrails:Rules:0:ExemptGroups:0=/fraud",
            "--Guardrails:Rules:1:Name=emails", "--Guardrails:Rules:1:Detector=Email", "--Guardrails:Rules:1:Action=Mask", "--Guardrails:Rules:1:Applies=Input",
            "--Guardrails:Rules:1:Models:0=guarded", "--Guardrails:Rules:1:Models:1=masked", $"--Guardrails:Rules:1:Models:2={Embedder}",
            "--Guardrails:Rules:2:Name=letter-e", "--Guardrails:Rules:2:Pattern=e", "--Guardrails:Rules:2:Applies=Output", "--Guardrails:Rules:2:Models:0=guarded",
            "--Guardrails:Rules:2:Models:1=ghost",
            "--Guardrails:Rules:3:Name=vowels", "--Guardrails:Rules:3:Pattern=[aeiouAEIOU]", "--Guardrails:Rules:3:Action=Mask", "--Guardrails:Rules:3:Mask=_",
            "--Guardrails:Rules:3:MaxLength=1", "--Guardrails:Rules:3:Applies=Output", "--Guardrails:Rules:3:Models:0=masked-alias",
            "--Logging:LogLevel:Default=Warning",
        ]);
        await _running.WaitUntilReadyAsync();
    }

    public async Task DisposeAsync()
    {
        if (_running is not null)
        {
            await _running.DisposeAsync();
        }

        _root.Dispose();
    }
}
