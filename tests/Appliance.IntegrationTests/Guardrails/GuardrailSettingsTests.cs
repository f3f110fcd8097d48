using Appliance.Host;
using Microsoft.Extensions.Options;

namespace Appliance.IntegrationTests.Guardrails;

/// <summary>A guardrail written wrong stops the start naming its setting: a rule that silently did nothing would leave models unguarded.</summary>
public sealed class GuardrailSettingsTests
{
    [Fact]
    public async Task A_rule_that_cannot_work_stops_the_start_naming_the_setting()
    {
        await using var app = ApplianceApp.Create(["--urls=http://127.0.0.1:0", "--environment=Development", "--Appliance:BuiltInEmbeddings=false",
            "--Guardrails:Rules:0:Name=secrets", "--Guardrails:Rules:0:Pattern=(?<=key=)\\w+",
            "--Guardrails:Rules:1:Name=cards", "--Guardrails:Rules:1:Detector=CreditCards"]);

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());
        Assert.Contains("Guardrails:Rules:0:Pattern does not compile", error.Message, StringComparison.Ordinal);
        Assert.Contains("Guardrails:Rules:1:Detector 'CreditCards' is not a detector", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_misspelt_setting_or_action_of_a_rule_stops_the_start()
    {
        var error = Assert.Throws<OptionsValidationException>(() => ApplianceApp.Create(["--urls=http://127.0.0.1:0", "--environment=Development", "--Appliance:BuiltInEmbeddings=false",
            "--Guardrails:Rules:0:Name=emails", "--Guardrails:Rules:0:Detector=Email", "--Guardrails:Rules:0:Actoin=Mask"]));

        Assert.Contains("Guardrails:Rules:0:Actoin is not a setting: did you mean Guardrails:Rules:0:Action?", error.Message, StringComparison.Ordinal);

        error = Assert.Throws<OptionsValidationException>(() => ApplianceApp.Create(["--urls=http://127.0.0.1:0", "--environment=Development", "--Appliance:BuiltInEmbeddings=false",
            "--Guardrails:Rules:0:Name=codenames", "--Guardrails:Rules:0:Words:0=falcon", "--Guardrails:Rules:0:Action=Hide"]));
        Assert.Contains("Guardrails:Rules:0:Action is 'Hide', which is not a GuardrailAction", error.Message, StringComparison.Ordinal);

        // A number binds to whichever action it stands for, or to none: refused, naming the names.
        error = Assert.Throws<OptionsValidationException>(() => ApplianceApp.Create(["--urls=http://127.0.0.1:0", "--environment=Development", "--Appliance:BuiltInEmbeddings=false",
            "--Guardrails:Rules:0:Name=codenames", "--Guardrails:Rules:0:Words:0=falcon", "--Guardrails:Rules:0:Action=1"]));
        Assert.Contains("Guardrails:Rules:0:Action is '1', not one name: write one of Block, Mask", error.Message, StringComparison.Ordinal);
        error = Assert.Throws<OptionsValidationException>(() => ApplianceApp.Create(["--urls=http://127.0.0.1:0", "--environment=Development", "--Appliance:BuiltInEmbeddings=false",
            "--Guardrails:Rules:0:Name=codenames", "--Guardrails:Rules:0:Words:0=falcon", "--Guardrails:Rules:0:Applies=Both, Input"]));
        Assert.Contains("Guardrails:Rules:0:Applies is 'Both, Input', not one name", error.Message, StringComparison.Ordinal);
    }
}
