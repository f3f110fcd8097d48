using Appliance.Host;

await ApplianceApp.Create(args).RunAsync();
