using System.CommandLine;
using Appliance.Identity;

namespace Appliance.Cli.Commands;

/// <summary>`appliance identity token`: mint a token of the development identity (the embedded default, loopback only).</summary>
internal static class IdentityCommands
{
    public static Command Create()
    {
        var identity = new Command("identity", "The development identity used when no Keycloak realm is configured");
        identity.Subcommands.Add(Token());
        return identity;
    }

    private static Command Token()
    {
        var dataFolder = new Option<DirectoryInfo>("--data-folder")
        {
            Description = "The appliance's data folder (Appliance:DataFolder); the key is in its identity/ folder",
            DefaultValueFactory = _ => new DirectoryInfo("data"),
        };
        var user = new Option<string>("--user") { Description = "preferred_username of the token", Required = true };
        var roles = new Option<string[]>("--role")
        {
            Description = "A realm role (repeat for several): appliance-user, appliance-admin, appliance-auditor",
            DefaultValueFactory = _ => ["appliance-user"],
            AllowMultipleArgumentsPerToken = true,
        };
        var groups = new Option<string[]>("--group") { Description = "A Keycloak group path, e.g. /research (repeat for several)", DefaultValueFactory = _ => [] };
        var clearance = new Option<string?>("--clearance") { Description = "Clearance claim, e.g. restricted (default: none, which the appliance reads as Identity:DefaultClearance)" };
        var audience = new Option<string>("--audience") { Description = "Identity:Audience of the appliance", DefaultValueFactory = _ => "appliance-api" };
        var lifetime = new Option<TimeSpan>("--lifetime") { Description = "How long the token is valid (hh:mm:ss)", DefaultValueFactory = _ => TimeSpan.FromHours(8) };
        var command = new Command("token", "Print a development bearer token for a user and roles")
        {
            dataFolder, user, roles, groups, clearance, audience, lifetime,
        };
        command.SetAction(parse =>
        {
            var span = parse.GetValue(lifetime);
            if (span <= TimeSpan.Zero || span > TimeSpan.FromDays(30))
            {
                Console.Error.WriteLine("error: --lifetime must be positive and at most 30 days");
                return 2;
            }

            var local = DevelopmentIdentity.LoadOrCreate(Path.Combine(parse.GetValue(dataFolder)!.FullName, "identity"));
            var request = new DevelopmentTokenRequest(parse.GetValue(user)!, parse.GetValue(roles)!, parse.GetValue(audience)!, span,
                GroupList: parse.GetValue(groups), Clearance: parse.GetValue(clearance));
            Console.WriteLine(local.Mint(request, DateTimeOffset.UtcNow));
            return 0;
        });
        return command;
    }
}
