using System.Text.Json;
using System.Text.RegularExpressions;
using Appliance.Api.Models;
using Appliance.Engine.Sampling;
using Appliance.Grammar;
using Appliance.Grammar.Schema;

namespace Appliance.Api.OpenAi;

/// <summary>
/// OpenAI's response_format: free text, any JSON object (json_object) or JSON fitting a schema (json_schema, optionally
/// strict). Both JSON kinds are enforced while sampling, so the answer parses (unless cut short by max_tokens).
/// </summary>
internal sealed partial record ResponseFormat(string Type, string? Name = null, JsonElement? Schema = null, bool Strict = false)
{
    public static readonly ResponseFormat Text = new("text");

    public bool IsJson => Type != "text";

    /// <summary>
    /// Whether every answer of this format is an object without a top-level "name": a strict schema of an object whose
    /// properties do not include it and which admits no others. Such an answer can never read as a call written as a
    /// bare JSON object (Llama 3's format).
    /// </summary>
    public bool ExcludesNamedObjects =>
        Strict && Schema is { ValueKind: JsonValueKind.Object } schema
        && schema.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() == "object"
        && schema.TryGetProperty("properties", out var properties) && properties.ValueKind == JsonValueKind.Object && !properties.TryGetProperty("name", out _)
        && schema.TryGetProperty("additionalProperties", out var additional) && additional.ValueKind == JsonValueKind.False
        && !schema.EnumerateObject().Any(keyword => keyword.Name is "anyOf" or "oneOf" or "allOf" or "$ref" or "patternProperties");

    public static ResponseFormat Read(JsonFields fields)
    {
        if (fields.Element("response_format") is not { } format || format.ValueKind == JsonValueKind.Null)
        {
            return Text;
        }

        if (format.ValueKind != JsonValueKind.Object)
        {
            throw JsonFields.TypeError("response_format", "an object");
        }

        var type = format.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String
            ? t.GetString()!
            : throw new OpenAiRequestException(OpenAiError.Invalid("Missing required parameter: 'response_format.type'.", "response_format.type", "missing_required_parameter"));
        foreach (var property in format.EnumerateObject().Where(p => p.Name != "type" && !(type == "json_schema" && p.Name == "json_schema")))
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"Unrecognized parameter: 'response_format.{property.Name}'.", $"response_format.{property.Name}", "unknown_parameter"));
        }

        return type switch
        {
            "text" => Text,
            "json_object" => new ResponseFormat(type),
            "json_schema" => ReadSchema(format),
            _ => throw new OpenAiRequestException(OpenAiError.Invalid(
                $"Invalid value: '{type}'. Supported values are: 'text', 'json_object' and 'json_schema'.", "response_format.type")),
        };
    }

    /// <summary>The constraint for <paramref name="model"/>'s vocabulary, or null for text; a schema that cannot be enforced is a 400 naming the keyword.</summary>
    public ITokenConstraint? ConstraintFor(ServedModel model)
    {
        if (!IsJson)
        {
            return null;
        }

        if (model.Engine.Model.EosTokenIds.Count == 0)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid(
                $"The model '{model.Id}' declares no end-of-sequence token, so a JSON answer could not end where the JSON does.", "response_format"));
        }

        var outputs = StructuredOutputs.For(model.Engine.Tokenizer, model.Engine.Model.VocabularySize);
        try
        {
            return Schema is { } schema ? outputs.JsonSchema(schema, Strict) : outputs.JsonObject();
        }
        catch (SchemaRefusedException refused)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid(
                $"Invalid schema for response_format '{Name}': {refused.Message}", "response_format.json_schema.schema", refused.Keyword is null ? "invalid_schema" : "unsupported_schema_keyword"));
        }
        catch (GrammarTooLargeException tooLarge)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"Invalid schema for response_format '{Name}': {tooLarge.Message}.", "response_format.json_schema.schema", "schema_too_large"));
        }
    }

    private static ResponseFormat ReadSchema(JsonElement format)
    {
        if (!format.TryGetProperty("json_schema", out var definition) || definition.ValueKind != JsonValueKind.Object)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("Missing required parameter: 'response_format.json_schema'.", "response_format.json_schema", "missing_required_parameter"));
        }

        foreach (var property in definition.EnumerateObject().Where(p => p.Name is not ("name" or "description" or "schema" or "strict")))
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"Unrecognized parameter: 'response_format.json_schema.{property.Name}'.", $"response_format.json_schema.{property.Name}", "unknown_parameter"));
        }

        var name = definition.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : null;
        if (name is null || !SchemaName().IsMatch(name))
        {
            throw new OpenAiRequestException(OpenAiError.Invalid(
                "'response_format.json_schema.name' is required: 1 to 64 letters, digits, underscores or dashes.", "response_format.json_schema.name", name is null ? "missing_required_parameter" : "invalid_value"));
        }

        var strict = definition.TryGetProperty("strict", out var s) && s.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False or JsonValueKind.Null => false,
            _ => throw JsonFields.TypeError("response_format.json_schema.strict", "a boolean"),
        };
        // Without a schema, any JSON value (OpenAI accepts that); cloned so it outlives the request body.
        var schema = definition.TryGetProperty("schema", out var body) ? body.Clone() : JsonDocument.Parse("{}").RootElement.Clone();
        return new ResponseFormat("json_schema", name, schema, strict);
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex SchemaName();
}
