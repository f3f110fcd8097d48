using System.CommandLine;
using Appliance.Cli.Commands;

var root = new RootCommand("appliance: administer the on-premises generative-AI appliance");
root.Subcommands.Add(ModelCommands.Create());
root.Subcommands.Add(IdentityCommands.Create());
root.Subcommands.Add(AuditCommands.Create());
root.Subcommands.Add(BundleCommands.Create());
return root.Parse(args).Invoke();
