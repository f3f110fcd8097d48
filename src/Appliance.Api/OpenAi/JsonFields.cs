using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Appliance.Api.OpenAi;

/// <summary>
/// Reads a JSON request body field by field, with OpenAI-style errors naming the parameter at fault: malformed JSON,
/// wrong types, out-of-range numbers and unrecognised fields are each a 400, never a 500.
/// </summary>
internal sealed class JsonFields : IDisposable
{
    private readonly JsonDocument _document;

    internal JsonFields(JsonDocument document) => _document = document;

    public JsonElement Root => _document.RootElement;

    public static async Task<JsonFields> ReadAsync(HttpRequest request, long bodyLimit, CancellationToken cancellationToken)
    {
        byte[] body;
        try
        {
            using var buffer = new MemoryStream();
            await request.Body.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
            body = buffer.ToArray();
        }
        catch (BadHttpRequestException exception) when (exception.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw new OpenAiRequestException(OpenAiError.TooLarge(bodyLimit));
        }

        if (body.Length == 0)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("The request body is empty; send a JSON object.", null, "invalid_json"));
        }

        if (!System.Text.Unicode.Utf8.IsValid(body))
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("The request body is not valid UTF-8.", null, "invalid_json"));
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 32 });
        }
        catch (JsonException exception)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"We could not parse the JSON body of your request: {exception.Message}", null, "invalid_json"));
        }

        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            document.Dispose();
            throw new OpenAiRequestException(OpenAiError.Invalid("The request body must be a JSON object.", null, "invalid_json"));
        }

        if (Unreadable(document.RootElement, "body") is { } problem)
        {
            document.Dispose();
            throw new OpenAiRequestException(OpenAiError.Invalid(problem, null, "invalid_json"));
        }

        return new JsonFields(document);
    }

    /// <summary>
    /// Checks the whole body once, up front: text that cannot become a .NET string (an escaped lone surrogate such as
    /// "\ud800") and a key given twice in one object. Both would otherwise surface wherever a part is read, late (a tool's
    /// schema is read when the prompt is rendered) and as an exception that is no client error.
    /// </summary>
    /// <param name="duplicateKeys">
    /// Whether a key given twice is refused too: not in a tool call's arguments, which a model wrote and the client
    /// sends back as it got them (read last value wins, as the templates do).
    /// </param>
    internal static string? Unreadable(JsonElement element, string path, bool duplicateKeys = true)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String when !Decodes(element):
                return $"The JSON body holds text that is not valid Unicode (an unpaired surrogate escape) at {path}.";
            case JsonValueKind.Object:
                var keys = new HashSet<string>(StringComparer.Ordinal);
                foreach (var property in element.EnumerateObject())
                {
                    string name;
                    try
                    {
                        name = property.Name;
                    }
                    catch (InvalidOperationException)
                    {
                        return $"The JSON body holds a key that is not valid Unicode (an unpaired surrogate escape) in {path}.";
                    }

                    if (!keys.Add(name) && duplicateKeys)
                    {
                        return $"The JSON body gives the key '{name}' twice in {path}.";
                    }

                    if (Unreadable(property.Value, $"{path}.{name}", duplicateKeys) is { } problem)
                    {
                        return problem;
                    }
                }

                return null;
            case JsonValueKind.Array:
                var index = 0;
                foreach (var item in element.EnumerateArray())
                {
                    if (Unreadable(item, $"{path}.{index++}", duplicateKeys) is { } problem)
                    {
                        return problem;
                    }
                }

                return null;
            default:
                return null;
        }
    }

    private static bool Decodes(JsonElement text)
    {
        try
        {
            _ = text.GetString();
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>
    /// Runs a request reader; a part read as a type it is not (a number where text belongs) surfaces as
    /// InvalidOperationException and is answered as a 400 too (the body's text was checked when it was read).
    /// </summary>
    public T Parse<T>(Func<JsonFields, T> read)
    {
        try
        {
            return read(this);
        }
        catch (InvalidOperationException exception)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"A field of the request has the wrong type: {exception.Message}", null, "invalid_type"));
        }
    }

    /// <summary>Refuses fields that are not in <paramref name="known"/>, as OpenAI does ("Unrecognized request argument").</summary>
    public void RejectUnknown(IReadOnlySet<string> known)
    {
        foreach (var property in Root.EnumerateObject())
        {
            if (!known.Contains(property.Name))
            {
                throw new OpenAiRequestException(OpenAiError.Invalid($"Unrecognized request argument supplied: {property.Name}", property.Name, "unknown_parameter"));
            }
        }
    }

    public bool Has(string name) => Root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null;

    public JsonElement? Element(string name) =>
        Root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    public string RequiredString(string name) =>
        OptionalString(name) ?? throw new OpenAiRequestException(OpenAiError.Invalid($"Missing required parameter: '{name}'.", name, "missing_required_parameter"));

    public string? OptionalString(string name) => Element(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } value => value.GetString(),
        _ => throw TypeError(name, "a string"),
    };

    public bool? OptionalBool(string name) => Element(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        _ => throw TypeError(name, "a boolean"),
    };

    public double? OptionalNumber(string name, double min, double max)
    {
        if (Element(name) is not { } value)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var number) || !double.IsFinite(number))
        {
            throw TypeError(name, "a number");
        }

        return number >= min && number <= max
            ? number
            : throw new OpenAiRequestException(OpenAiError.Invalid($"'{name}' must be between {min} and {max}; got {number}.", name));
    }

    public long? OptionalInteger(string name, long min, long max)
    {
        if (Element(name) is not { } value)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var number) || !double.IsFinite(number) || number != Math.Floor(number))
        {
            throw TypeError(name, "an integer");
        }

        return number >= min && number <= max
            ? (long)number
            : throw new OpenAiRequestException(OpenAiError.Invalid($"'{name}' must be between {min} and {max}; got {number}.", name));
    }

    /// <summary>OpenAI's stop: a string, or an array of up to <paramref name="max"/> non-empty strings.</summary>
    public IReadOnlyList<string> Stop(int max)
    {
        switch (Element("stop"))
        {
            case null:
                return [];
            case { ValueKind: JsonValueKind.String } single:
                return string.IsNullOrEmpty(single.GetString()) ? [] : [single.GetString()!];
            case { ValueKind: JsonValueKind.Array } list:
                var stops = new List<string>();
                foreach (var item in list.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(item.GetString()))
                    {
                        throw TypeError("stop", "a string or an array of non-empty strings");
                    }

                    stops.Add(item.GetString()!);
                }

                return stops.Count <= max ? stops : throw new OpenAiRequestException(OpenAiError.Invalid($"'stop' holds at most {max} sequences.", "stop"));
            default:
                throw TypeError("stop", "a string or an array of strings");
        }
    }

    /// <summary>stream_options.include_usage; stream_options is only allowed with stream: true.</summary>
    public bool IncludeUsage(bool stream)
    {
        if (Element("stream_options") is not { } options)
        {
            return false;
        }

        if (!stream)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("'stream_options' is only allowed when 'stream' is true.", "stream_options"));
        }

        if (options.ValueKind != JsonValueKind.Object)
        {
            throw TypeError("stream_options", "an object");
        }

        foreach (var property in options.EnumerateObject())
        {
            // include_obfuscation pads OpenAI's stream events against length side channels: none to pad here.
            if (property.Name is not ("include_usage" or "include_obfuscation"))
            {
                throw new OpenAiRequestException(OpenAiError.Invalid($"Unrecognized request argument supplied: stream_options.{property.Name}", $"stream_options.{property.Name}", "unknown_parameter"));
            }
        }

        return options.TryGetProperty("include_usage", out var include) && include.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False or JsonValueKind.Null => false,
            _ => throw TypeError("stream_options.include_usage", "a boolean"),
        };
    }

    public static OpenAiRequestException TypeError(string param, string expected) =>
        new(OpenAiError.Invalid($"Invalid type for '{param}': expected {expected}.", param, "invalid_type"));

    public void Dispose() => _document.Dispose();
}
