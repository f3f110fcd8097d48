using Appliance.Host;

try
{
    await ApplianceApp.Create(args).RunAsync();
    return 0;
}
catch (Exception exception) when (SettingsMistakes.In(exception) is { Count: > 0 } mistakes)
{
    return SettingsMistakes.Report(mistakes, Console.Error);
}
