using System.Text.Json;
using Appliance.Grammar.Language;
using static Appliance.Grammar.Language.Lang;

namespace Appliance.Grammar.Schema;

/// <summary>
/// Compiles the JSON Schema subset of OpenAI's structured outputs into a byte language of the JSON texts that satisfy
/// it: type (one or several), properties and required (in the schema's order), additionalProperties, items, minItems
/// and maxItems, enum, const, anyOf, $ref into $defs or definitions (recursion unrolled to a fixed depth), string
/// formats, minLength, maxLength and pattern. Any other keyword is refused by name rather than ignored, because ignoring it
/// would let through output that the caller's validator rejects.
/// </summary>
internal sealed class SchemaCompiler
{
    /// <summary>How many times one $ref may expand inside itself before that branch is cut.</summary>
    public const int MaxRecursion = 3;

    /// <summary>The longest bounded string (each character position of one costs about twenty automaton states).</summary>
    public const int MaxStringLength = 256;

    public const int MaxBoundedItems = 100;

    /// <summary>
    /// The most subschemas one compilation visits (each $ref use counts again): a small body can otherwise expand
    /// exponentially through references that use each other twice.
    /// </summary>
    public const int MaxSubschemas = 5_000;

    /// <summary>The longest chain of $ref expansions inside one another.</summary>
    public const int MaxReferenceDepth = 32;

    private static readonly HashSet<string> Annotations =
        ["title", "description", "$schema", "$id", "$comment", "default", "examples", "deprecated", "readOnly", "writeOnly"];

    private static readonly HashSet<string> Understood =
        ["type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "enum", "const", "anyOf",
         "$ref", "$defs", "definitions", "format", "minLength", "maxLength", "pattern"];

    private static readonly HashSet<string> Types = ["string", "number", "integer", "boolean", "null", "object", "array"];

    private readonly JsonElement _root;
    private readonly bool _strict;
    private readonly Dictionary<string, int> _expanding = new(StringComparer.Ordinal);
    private int _visited;
    private int _referenceDepth;

    private SchemaCompiler(JsonElement root, bool strict)
    {
        _root = root;
        _strict = strict;
    }

    /// <summary>The language of JSON texts that satisfy <paramref name="schema"/> (strict mode: OpenAI's extra rules).</summary>
    public static Lang Compile(JsonElement schema, bool strict)
    {
        var compiler = new SchemaCompiler(schema, strict);
        if (strict && (schema.ValueKind != JsonValueKind.Object || !schema.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || type.GetString() != "object"))
        {
            throw new SchemaRefusedException("In strict mode the schema's root must be of type \"object\".", "type");
        }

        var language = compiler.Value(schema, "#");
        return language.IsNothing
            ? throw new SchemaRefusedException($"No JSON value satisfies the schema within {MaxRecursion} levels of recursion.", "$ref")
            : language;
    }

    private Lang Value(JsonElement schema, string path)
    {
        if (++_visited > MaxSubschemas)
        {
            throw new SchemaRefusedException($"The schema expands to more than {MaxSubschemas} subschemas (counting each use of a $ref).", "$ref");
        }

        if (schema.ValueKind == JsonValueKind.True)
        {
            return JsonLanguage.AnyValue(JsonLanguage.GenericDepth);
        }

        if (schema.ValueKind == JsonValueKind.False)
        {
            return Nothing;
        }

        if (schema.ValueKind != JsonValueKind.Object)
        {
            throw new SchemaRefusedException($"The schema at {path} must be an object or a boolean.");
        }

        foreach (var keyword in schema.EnumerateObject())
        {
            if (!Understood.Contains(keyword.Name) && !Annotations.Contains(keyword.Name))
            {
                throw new SchemaRefusedException($"The keyword '{keyword.Name}' (at {path}) is not supported in structured outputs.", keyword.Name);
            }
        }

        if (schema.TryGetProperty("$ref", out var reference))
        {
            return Reference(schema, reference, path);
        }

        var types = TypesOf(schema, path);
        RefuseSiblings(schema, path);
        if (schema.TryGetProperty("const", out var constant))
        {
            return Literals([constant], types);
        }

        if (schema.TryGetProperty("enum", out var values))
        {
            if (values.ValueKind != JsonValueKind.Array || values.GetArrayLength() == 0)
            {
                throw new SchemaRefusedException($"'enum' at {path} must be a non-empty array.", "enum");
            }

            return Literals([.. values.EnumerateArray()], types);
        }

        if (schema.TryGetProperty("anyOf", out var choices))
        {
            if (choices.ValueKind != JsonValueKind.Array || choices.GetArrayLength() == 0)
            {
                throw new SchemaRefusedException($"'anyOf' at {path} must be a non-empty array of schemas.", "anyOf");
            }

            if (types is not null)
            {
                throw new SchemaRefusedException($"'anyOf' at {path} cannot be combined with 'type'; give each choice its type.", "anyOf");
            }

            return Any(choices.EnumerateArray().Select((choice, i) => Value(choice, $"{path}/anyOf/{i}")).ToList());
        }

        types ??= InferredTypes(schema);
        return Any(types.Select(type => OfType(schema, type, path)).ToList());
    }

    /// <summary>
    /// const, enum and anyOf decide the value on their own here; a keyword beside them that would narrow it further
    /// (a length, required properties, a second list of values) is refused rather than silently dropped.
    /// </summary>
    private static void RefuseSiblings(JsonElement schema, string path)
    {
        var decider = new[] { "const", "enum", "anyOf" }.FirstOrDefault(k => schema.TryGetProperty(k, out _));
        if (decider is null)
        {
            return;
        }

        foreach (var keyword in schema.EnumerateObject().Select(p => p.Name))
        {
            if (keyword != decider && keyword != "type" && keyword != "$defs" && keyword != "definitions" && !Annotations.Contains(keyword))
            {
                throw new SchemaRefusedException($"'{keyword}' beside '{decider}' (at {path}) is not supported; put the constraint inside each choice or value.", keyword);
            }
        }
    }

    private IReadOnlyList<string>? TypesOf(JsonElement schema, string path)
    {
        if (!schema.TryGetProperty("type", out var type))
        {
            return null;
        }

        string[] names = type.ValueKind switch
        {
            JsonValueKind.String => [type.GetString()!],
            JsonValueKind.Array when type.EnumerateArray().All(t => t.ValueKind == JsonValueKind.String) => [.. type.EnumerateArray().Select(t => t.GetString()!)],
            _ => throw new SchemaRefusedException($"'type' at {path} must be a type name or an array of them.", "type"),
        };
        foreach (var name in names.Where(n => !Types.Contains(n)))
        {
            throw new SchemaRefusedException($"'type' at {path} names an unknown type '{name}'.", "type");
        }

        return names.Length == 0 ? throw new SchemaRefusedException($"'type' at {path} must name at least one type.", "type") : names;
    }

    private static IReadOnlyList<string> InferredTypes(JsonElement schema)
    {
        if (schema.TryGetProperty("properties", out _) || schema.TryGetProperty("additionalProperties", out _))
        {
            return ["object"];
        }

        if (schema.TryGetProperty("items", out _))
        {
            return ["array"];
        }

        if (schema.TryGetProperty("format", out _) || schema.TryGetProperty("minLength", out _) || schema.TryGetProperty("maxLength", out _) || schema.TryGetProperty("pattern", out _))
        {
            return ["string"];
        }

        return [.. Types];
    }

    private Lang OfType(JsonElement schema, string type, string path) => type switch
    {
        "string" => String(schema, path),
        "integer" => JsonLanguage.Integer,
        "number" => JsonLanguage.Number,
        "boolean" => JsonLanguage.Boolean,
        "null" => JsonLanguage.Null,
        "object" => Object(schema, path),
        "array" => Array(schema, path),
        _ => throw new InvalidOperationException(type),
    };

    private static Lang Literals(IReadOnlyList<JsonElement> values, IReadOnlyList<string>? types) =>
        Any(values.Where(value => types is null || types.Any(type => Matches(value, type))).Select(JsonLanguage.Literal).ToList());

    private static bool Matches(JsonElement value, string type) => type switch
    {
        "string" => value.ValueKind == JsonValueKind.String,
        "number" => value.ValueKind == JsonValueKind.Number,
        "integer" => value.ValueKind == JsonValueKind.Number && value.TryGetDecimal(out var number) && decimal.Truncate(number) == number,
        "boolean" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "null" => value.ValueKind == JsonValueKind.Null,
        "object" => value.ValueKind == JsonValueKind.Object,
        "array" => value.ValueKind == JsonValueKind.Array,
        _ => false,
    };

    private static Lang String(JsonElement schema, string path)
    {
        var min = Count(schema, "minLength", path);
        var max = Count(schema, "maxLength", path);
        if (schema.TryGetProperty("pattern", out var pattern))
        {
            if (min is not null || max is not null || schema.TryGetProperty("format", out _))
            {
                throw new SchemaRefusedException($"'pattern' at {path} cannot be combined with 'format', 'minLength' or 'maxLength'.", "pattern");
            }

            string text;
            try
            {
                text = pattern.ValueKind == JsonValueKind.String ? pattern.GetString()! : throw new SchemaRefusedException($"'pattern' at {path} must be a string.", "pattern");
            }
            catch (InvalidOperationException)
            {
                throw new SchemaRefusedException($"'pattern' at {path} holds half a character (a lone surrogate escape).", "pattern");
            }

            return PatternLanguage.Of(text, path);
        }

        if (schema.TryGetProperty("format", out var format))
        {
            if (min is not null || max is not null)
            {
                throw new SchemaRefusedException($"'format' at {path} cannot be combined with 'minLength' or 'maxLength'.", "format");
            }

            var name = format.ValueKind == JsonValueKind.String ? format.GetString()! : throw new SchemaRefusedException($"'format' at {path} must be a string.", "format");
            return StringFormats.Of(name) ?? throw new SchemaRefusedException(
                $"The string format '{name}' (at {path}) is not supported; supported: {string.Join(", ", StringFormats.Supported)}.", "format");
        }

        if (max > MaxStringLength)
        {
            throw new SchemaRefusedException($"'maxLength' at {path} is above {MaxStringLength}, the longest bounded string enforced.", "maxLength");
        }

        if (min > (max ?? MaxStringLength))
        {
            throw new SchemaRefusedException($"'minLength' at {path} is above the longest string allowed.", "minLength");
        }

        return min is null && max is null ? JsonLanguage.FreeString : JsonLanguage.StringOfLength(min ?? 0, max);
    }

    private Lang Array(JsonElement schema, string path)
    {
        var min = Count(schema, "minItems", path) ?? 0;
        var max = Count(schema, "maxItems", path);
        if (max > MaxBoundedItems)
        {
            throw new SchemaRefusedException($"'maxItems' at {path} is above {MaxBoundedItems}, the most items enforced as a bound.", "maxItems");
        }

        if (min > (max ?? MaxBoundedItems))
        {
            throw new SchemaRefusedException($"'minItems' at {path} is above the most items allowed.", "minItems");
        }

        var item = schema.TryGetProperty("items", out var items)
            ? items.ValueKind is JsonValueKind.Object or JsonValueKind.True or JsonValueKind.False
                ? Value(items, path + "/items")
                : throw new SchemaRefusedException($"'items' at {path} must be one schema (tuples are not supported).", "items")
            : JsonLanguage.AnyValue(JsonLanguage.GenericDepth - 1);
        return JsonLanguage.Container("[", item, min, max, "]");
    }

    private Lang Object(JsonElement schema, string path)
    {
        var hasProperties = schema.TryGetProperty("properties", out var properties);
        if (hasProperties && properties.ValueKind != JsonValueKind.Object)
        {
            throw new SchemaRefusedException($"'properties' at {path} must be an object.", "properties");
        }

        var required = Required(schema, path);
        var additional = schema.TryGetProperty("additionalProperties", out var extra) ? extra : (JsonElement?)null;
        if (_strict && additional is not { ValueKind: JsonValueKind.False })
        {
            throw new SchemaRefusedException($"In strict mode 'additionalProperties' must be given and false (at {path}).", "additionalProperties");
        }

        var names = hasProperties ? properties.EnumerateObject().Select(p => p.Name).ToList() : [];
        foreach (var name in required.Where(r => !names.Contains(r)))
        {
            throw new SchemaRefusedException($"'required' at {path} names '{name}', which is not among the properties.", "required");
        }

        if (_strict && names.FirstOrDefault(n => !required.Contains(n)) is { } optional)
        {
            throw new SchemaRefusedException($"In strict mode every property must be required; '{optional}' (at {path}) is not. Make it nullable instead.", "required");
        }

        if (names.Count == 0 && additional is not { ValueKind: JsonValueKind.False })
        {
            // No properties named: any members, of the given schema or of any value.
            var value = additional is { ValueKind: JsonValueKind.Object } schemaOfValues
                ? Value(schemaOfValues, path + "/additionalProperties")
                : JsonLanguage.AnyValue(JsonLanguage.GenericDepth - 1);
            return JsonLanguage.AnyObject(value);
        }

        if (additional is { ValueKind: not (JsonValueKind.False or JsonValueKind.True or JsonValueKind.Object) })
        {
            throw new SchemaRefusedException($"'additionalProperties' at {path} must be a boolean or a schema.", "additionalProperties");
        }

        return ObjectLang.Of([.. names.Select(name => new ObjectLang.Property(
            name, Value(properties.GetProperty(name), $"{path}/properties/{name}"), required.Contains(name)))]);
    }

    private static HashSet<string> Required(JsonElement schema, string path)
    {
        if (!schema.TryGetProperty("required", out var required))
        {
            return [];
        }

        return required.ValueKind == JsonValueKind.Array && required.EnumerateArray().All(r => r.ValueKind == JsonValueKind.String)
            ? [.. required.EnumerateArray().Select(r => r.GetString()!)]
            : throw new SchemaRefusedException($"'required' at {path} must be an array of property names.", "required");
    }

    private Lang Reference(JsonElement schema, JsonElement reference, string path)
    {
        if (schema.EnumerateObject().Any(p => p.Name is not ("$ref" or "$defs" or "definitions") && !Annotations.Contains(p.Name)))
        {
            throw new SchemaRefusedException($"'$ref' at {path} cannot have sibling keywords; move them into the definition.", "$ref");
        }

        var target = reference.ValueKind == JsonValueKind.String ? reference.GetString()! : throw new SchemaRefusedException($"'$ref' at {path} must be a string.", "$ref");
        var resolved = Resolve(target) ?? throw new SchemaRefusedException($"'$ref' at {path} points to '{target}', which is not in this schema's $defs or definitions.", "$ref");
        var depth = _expanding.GetValueOrDefault(target);
        if (depth >= MaxRecursion)
        {
            return Nothing; // recursion this deep is cut; a schema with a way to stop (a null, an empty array) still has one
        }

        if (_referenceDepth >= MaxReferenceDepth)
        {
            throw new SchemaRefusedException($"'$ref' at {path} is more than {MaxReferenceDepth} references deep.", "$ref");
        }

        _expanding[target] = depth + 1;
        _referenceDepth++;
        try
        {
            return Value(resolved, target);
        }
        finally
        {
            _expanding[target] = depth;
            _referenceDepth--;
        }
    }

    private JsonElement? Resolve(string reference)
    {
        if (reference == "#")
        {
            return _root;
        }

        if (!reference.StartsWith("#/", StringComparison.Ordinal))
        {
            return null;
        }

        var current = _root;
        foreach (var segment in reference[2..].Split('/'))
        {
            var name = Uri.UnescapeDataString(segment).Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
            if (current.ValueKind != JsonValueKind.Object || !current.TryGetProperty(name, out current))
            {
                return null;
            }
        }

        return current;
    }

    private static int? Count(JsonElement schema, string keyword, string path)
    {
        if (!schema.TryGetProperty(keyword, out var value))
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var count) && count >= 0
            ? count
            : throw new SchemaRefusedException($"'{keyword}' at {path} must be a non-negative integer.", keyword);
    }
}
