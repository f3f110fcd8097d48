using System.Text.Json;
using Json.Schema;

namespace Appliance.Tests.Common;

/// <summary>Varied schemas of the subset structured outputs enforce, strict and loose.</summary>
public static class StructuredOutputSchemas
{
    public static readonly (string Name, bool Strict, string Schema)[] All =
    [
        ("flat", true, """{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"member":{"type":"boolean"}},"required":["name","age","member"],"additionalProperties":false}"""),
        ("numbers", true, """{"type":"object","properties":{"price":{"type":"number"},"count":{"type":"integer"},"ratio":{"type":["number","null"]}},"required":["price","count","ratio"],"additionalProperties":false}"""),
        ("enum", true, """{"type":"object","properties":{"colour":{"type":"string","enum":["red","green","blue"]},"size":{"enum":[1,2,3,null]}},"required":["colour","size"],"additionalProperties":false}"""),
        ("const", true, """{"type":"object","properties":{"kind":{"const":"event"},"version":{"const":2}},"required":["kind","version"],"additionalProperties":false}"""),
        ("nested", true, """{"type":"object","properties":{"user":{"type":"object","properties":{"id":{"type":"integer"},"address":{"type":"object","properties":{"city":{"type":"string"},"zip":{"type":"string"}},"required":["city","zip"],"additionalProperties":false}},"required":["id","address"],"additionalProperties":false}},"required":["user"],"additionalProperties":false}"""),
        ("array of strings", true, """{"type":"object","properties":{"tags":{"type":"array","items":{"type":"string"}}},"required":["tags"],"additionalProperties":false}"""),
        ("bounded array", true, """{"type":"object","properties":{"scores":{"type":"array","items":{"type":"integer"},"minItems":2,"maxItems":4}},"required":["scores"],"additionalProperties":false}"""),
        ("array of objects", true, """{"type":"object","properties":{"items":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string"},"qty":{"type":"integer"}},"required":["sku","qty"],"additionalProperties":false}}},"required":["items"],"additionalProperties":false}"""),
        ("anyOf", true, """{"type":"object","properties":{"value":{"anyOf":[{"type":"string"},{"type":"integer"},{"type":"object","properties":{"x":{"type":"number"}},"required":["x"],"additionalProperties":false}]}},"required":["value"],"additionalProperties":false}"""),
        ("formats", true, """{"type":"object","properties":{"day":{"type":"string","format":"date"},"at":{"type":"string","format":"date-time"},"id":{"type":"string","format":"uuid"}},"required":["day","at","id"],"additionalProperties":false}"""),
        ("network formats", true, """{"type":"object","properties":{"ip":{"type":"string","format":"ipv4"},"mail":{"type":"string","format":"email"},"host":{"type":"string","format":"hostname"},"t":{"type":"string","format":"time"}},"required":["ip","mail","host","t"],"additionalProperties":false}"""),
        ("patterns", true, """{"type":"object","properties":{"code":{"type":"string","pattern":"^[A-Z]{2}-\\d{3}$"},"stage":{"type":"string","pattern":"^(alpha|beta)(-[a-z]+)?$"},"mentions":{"type":"string","pattern":"ok"},"plain":{"type":"string","pattern":"^[^\\s\"]{1,8}$"}},"required":["code","stage","mentions","plain"],"additionalProperties":false}"""),
        ("string lengths", true, """{"type":"object","properties":{"code":{"type":"string","minLength":3,"maxLength":5},"note":{"type":"string","maxLength":10}},"required":["code","note"],"additionalProperties":false}"""),
        ("defs", true, """{"type":"object","$defs":{"point":{"type":"object","properties":{"x":{"type":"number"},"y":{"type":"number"}},"required":["x","y"],"additionalProperties":false}},"properties":{"from":{"$ref":"#/$defs/point"},"to":{"$ref":"#/$defs/point"}},"required":["from","to"],"additionalProperties":false}"""),
        ("recursive", true, """{"type":"object","$defs":{"node":{"type":"object","properties":{"label":{"type":"string","maxLength":8},"children":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":2}},"required":["label","children"],"additionalProperties":false}},"properties":{"root":{"$ref":"#/$defs/node"}},"required":["root"],"additionalProperties":false}"""),
        ("nullable object", true, """{"type":"object","properties":{"parent":{"anyOf":[{"type":"null"},{"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false}]}},"required":["parent"],"additionalProperties":false}"""),
        ("empty object", true, """{"type":"object","properties":{},"required":[],"additionalProperties":false}"""),
        ("optional properties", false, """{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},"c":{"type":"boolean"}},"required":["b"]}"""),
        ("map of numbers", false, """{"type":"object","additionalProperties":{"type":"number"}}"""),
        ("top-level array", false, """{"type":"array","items":{"type":"string","enum":["x","y"]},"minItems":1}"""),
        ("anything", false, """{}"""),
    ];

    /// <summary>Null when <paramref name="text"/> parses and satisfies <paramref name="schema"/> (formats checked too), else what is wrong.</summary>
    public static string? Problem(JsonSchema schema, string text)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text);
        }
        catch (JsonException exception)
        {
            return $"does not parse ({exception.Message})";
        }

        using var parsed = document;
        var result = schema.Evaluate(parsed.RootElement, new EvaluationOptions { RequireFormatValidation = true, OutputFormat = OutputFormat.List });
        return result.IsValid
            ? null
            : "fails the schema: " + string.Join("; ", (result.Details ?? []).Where(d => d.Errors is not null).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}")));
    }
}
