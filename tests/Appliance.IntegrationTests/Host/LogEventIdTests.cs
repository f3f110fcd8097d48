using System.Reflection;
using Microsoft.Extensions.Logging;

namespace Appliance.IntegrationTests.Host;

/// <summary>
/// Operators filter and alert on log event ids, and the README names some: one id must mean one message. Two of them
/// (the settings-file warnings and the chat-template warnings) once shared 3017 and 3018.
/// </summary>
public sealed class LogEventIdTests
{
    [Fact]
    public void Every_log_message_of_the_appliance_has_its_own_event_id()
    {
        var assemblies = Directory.GetFiles(AppContext.BaseDirectory, "Appliance.*.dll")
            .Where(path => !Path.GetFileName(path).Contains("Tests", StringComparison.Ordinal))
            .Select(Assembly.LoadFrom)
            .ToList();
        Assert.Contains(assemblies, a => a.GetName().Name == "Appliance.Host");

        var messages = assemblies
            .SelectMany(a => a.GetTypes())
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(m => (Method: $"{m.DeclaringType!.FullName}.{m.Name}", Attribute: m.GetCustomAttribute<LoggerMessageAttribute>()))
            .Where(m => m.Attribute is not null)
            .ToList();
        Assert.True(messages.Count > 50, $"only {messages.Count} log messages found: the scan missed assemblies");

        var shared = messages.GroupBy(m => m.Attribute!.EventId)
            .Where(g => g.Count() > 1)
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(m => m.Method))}")
            .ToList();
        Assert.True(shared.Count == 0, "event ids used twice: " + string.Join("; ", shared));
    }
}
