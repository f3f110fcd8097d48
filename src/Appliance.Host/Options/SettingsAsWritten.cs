using System.Globalization;
using System.ComponentModel;
using System.Reflection;
using System.Text.RegularExpressions;

namespace Appliance.Host.Options;

/// <summary>
/// Reads a settings section the way the operator wrote it, against the shape of the options it binds to, and names
/// what .NET's binder would pass over in silence: a misspelled key (ignored, so the default applies: an access rule
/// left open, a retention never set), a section where one value belongs or the reverse, one value where a list belongs
/// (an empty list), a value of the wrong type inside a dictionary (the binder drops the whole entry), and a duration
/// written as a bare number (which .NET reads as days: a drain timeout of "30" would wait a month).
/// </summary>
public static partial class SettingsAsWritten
{
    /// <summary>Each failure in <paramref name="section"/>, by its full key; a key counts if any of the shapes has it.</summary>
    public static IReadOnlyList<string> Check(IConfigurationSection section, params Type[] shapes)
    {
        var failures = new List<string>();
        // A section with only a value of its own is no settings at all: an environment variable of the host that
        // happens to be named like it (METRICS=1).
        if (section.GetChildren().Any())
        {
            Walk(section, shapes, failures);
        }

        return failures;
    }

    /// <summary>
    /// Top-level keys of the settings files that miss one of <paramref name="sections"/> by a letter or two ("Identiy",
    /// "Model"): the whole section would be ignored. Only files are read; environment variables hold unrelated names.
    /// </summary>
    public static IReadOnlyList<string> MisspelledSections(IConfiguration configuration, IReadOnlyCollection<string> sections)
    {
        var failures = new List<string>();
        if (configuration is not IConfigurationRoot root)
        {
            return failures;
        }

        foreach (var file in root.Providers.OfType<Microsoft.Extensions.Configuration.Json.JsonConfigurationProvider>())
        {
            foreach (var key in file.GetChildKeys([], parentPath: null).Distinct(StringComparer.OrdinalIgnoreCase))
            {
                if (!sections.Contains(key, StringComparer.OrdinalIgnoreCase) && Closest(key, sections) is { } meant)
                {
                    var path = file.Source.FileProvider is Microsoft.Extensions.FileProviders.PhysicalFileProvider folder
                        ? Path.Combine(folder.Root, file.Source.Path ?? string.Empty)
                        : file.Source.Path;
                    failures.Add($"'{key}' in {path} is not a section of the settings: did you mean {meant}?");
                }
            }
        }

        return failures;
    }

    private static void Walk(IConfigurationSection section, IReadOnlyList<Type> shapes, List<string> failures)
    {
        var shape = Unwrap(shapes[0]);
        var children = section.GetChildren().ToList();
        if (IsScalar(shape))
        {
            CheckScalar(section, shape, children, failures);
        }
        else if (DictionaryValue(shape) is { } value)
        {
            foreach (var child in children)
            {
                Walk(child, [value], failures);
            }
        }
        else if (ListElement(shape) is { } element)
        {
            CheckList(section, element, children, failures);
        }
        else
        {
            CheckGroup(section, shapes, children, failures);
        }
    }

    private static void CheckScalar(IConfigurationSection section, Type shape, List<IConfigurationSection> children, List<string> failures)
    {
        if (children.Count > 0)
        {
            failures.Add($"{section.Path} takes one value, not settings under it ({string.Join(", ", children.Select(c => c.Key))})");
            return;
        }

        if (string.IsNullOrWhiteSpace(section.Value))
        {
            return;
        }

        if (shape == typeof(TimeSpan) && BareNumber().IsMatch(section.Value) && section.Value.Trim() != "0")
        {
            failures.Add($"{section.Path} is '{section.Value}', which .NET reads as {section.Value.Trim()} days: write a duration as hh:mm:ss " +
                $"(00:00:30 is thirty seconds) or d.hh:mm:ss (90.00:00:00 is ninety days)");
            return;
        }

        if (shape.IsEnum && !Attribute.IsDefined(shape, typeof(FlagsAttribute))
            && (section.Value.Contains(',', StringComparison.Ordinal) || section.Value.Trim() is [var first, ..] && (char.IsAsciiDigit(first) || first is '+' or '-')))
        {
            // The converter takes any number for an enum (one no name stands for too) and ORs a list of them: a setting
            // that silently means another value, or nothing.
            failures.Add($"{section.Path} is '{section.Value}', not one name: write one of {string.Join(", ", Enum.GetNames(shape))}");
            return;
        }

        if (shape == typeof(DateOnly))
        {
            // The converter also takes 01/03/2027, as 3 January: a European reader meant 1 March.
            if (!DateOnly.TryParseExact(section.Value.Trim(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _))
            {
                failures.Add($"{section.Path} is '{section.Value}', which is not {Kind(shape)}");
            }

            return;
        }

        try
        {
            TypeDescriptor.GetConverter(shape).ConvertFromInvariantString(section.Value);
        }
        catch (Exception exception) when (exception is FormatException or ArgumentException or NotSupportedException or OverflowException
            || exception.InnerException is FormatException or OverflowException)
        {
            failures.Add($"{section.Path} is '{section.Value}', which is not {Kind(shape)}");
        }
    }

    private static void CheckList(IConfigurationSection section, Type element, List<IConfigurationSection> children, List<string> failures)
    {
        // A value beside entries (from another source, say) is passed over as well.
        if (!string.IsNullOrWhiteSpace(section.Value))
        {
            failures.Add($"{section.Path} must be a list (in JSON [\"{section.Value}\"]; as a variable or argument {section.Path}:0), not one value");
            return;
        }

        // The binder takes every entry whatever its key (TrustedProxies__lb1 is an entry too).
        foreach (var child in children)
        {
            Walk(child, [element], failures);
        }
    }

    private static void CheckGroup(IConfigurationSection section, IReadOnlyList<Type> shapes, List<IConfigurationSection> children, List<string> failures)
    {
        var properties = shapes.SelectMany(Settable).GroupBy(p => p.Name, StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => g.Select(p => p.PropertyType).ToList(), StringComparer.OrdinalIgnoreCase);
        if (!string.IsNullOrWhiteSpace(section.Value))
        {
            failures.Add($"{section.Path} is a group of settings ({string.Join(", ", properties.Keys)}), not one value");
            return;
        }

        foreach (var child in children)
        {
            if (properties.TryGetValue(child.Key, out var types))
            {
                Walk(child, types, failures);
                continue;
            }

            failures.Add(Closest(child.Key, properties.Keys) is { } meant
                ? $"{child.Path} is not a setting: did you mean {section.Path}:{meant}?"
                : $"{child.Path} is not a setting (those of {section.Path} are {string.Join(", ", properties.Keys)})");
        }
    }

    /// <summary>The properties the binder sets: public, instance, writable (init included).</summary>
    private static IEnumerable<PropertyInfo> Settable(Type shape) =>
        shape.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.SetMethod is { IsPublic: true } && p.GetIndexParameters().Length == 0);

    private static Type Unwrap(Type type) => Nullable.GetUnderlyingType(type) ?? type;

    private static bool IsScalar(Type type) =>
        type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(TimeSpan)
        || type == typeof(DateTime) || type == typeof(DateTimeOffset) || type == typeof(DateOnly) || type == typeof(Guid) || type == typeof(Uri);

    private static Type? DictionaryValue(Type type) =>
        (GenericInterface(type, typeof(IDictionary<,>)) ?? GenericInterface(type, typeof(IReadOnlyDictionary<,>)))?.GetGenericArguments()[1];

    private static Type? ListElement(Type type) =>
        type.IsArray ? type.GetElementType() : GenericInterface(type, typeof(IEnumerable<>))?.GetGenericArguments()[0];

    private static Type? GenericInterface(Type type, Type definition) =>
        type.IsGenericType && type.GetGenericTypeDefinition() == definition
            ? type
            : type.GetInterfaces().FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == definition);

    private static string Kind(Type shape) =>
        shape == typeof(bool) ? "true or false"
        : shape == typeof(TimeSpan) ? "a duration (hh:mm:ss, or d.hh:mm:ss)"
        : shape == typeof(int) || shape == typeof(long) || shape == typeof(short) || shape == typeof(uint) || shape == typeof(ulong) ? "a whole number (no units or separators)"
        : shape == typeof(double) || shape == typeof(float) || shape == typeof(decimal) ? "a number (with a '.' for decimals)"
        : shape == typeof(DateOnly) ? "a day (yyyy-MM-dd)"
        : $"a {shape.Name}";

    /// <summary>The candidate a misspelling most likely meant: within two edits, or a third of the word for long ones.</summary>
    private static string? Closest(string written, IEnumerable<string> candidates)
    {
        var limit = Math.Max(2, written.Length / 3);
        return candidates.Select(c => (Name: c, Distance: EditDistance(written.ToLowerInvariant(), c.ToLowerInvariant())))
            .Where(c => c.Distance <= limit).OrderBy(c => c.Distance).Select(c => c.Name).FirstOrDefault();
    }

    private static int EditDistance(string a, string b)
    {
        var previous = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var current = new int[b.Length + 1];
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }

            previous = current;
        }

        return previous[b.Length];
    }

    [GeneratedRegex(@"^\s*-?\d+\s*$")]
    private static partial Regex BareNumber();
}
