using System.Text.Json;
using System.Text.RegularExpressions;
using Appliance.Prompting;

namespace Appliance.Api.OpenAi;

/// <summary>How a model may call tools in this request: OpenAI's tools, tool_choice and parallel_tool_calls.</summary>
internal sealed partial record ToolUse(IReadOnlyList<ToolDefinition> Tools, string Choice, string? Function, bool Parallel)
{
    public static readonly ToolUse None = new([], "none", null, true);

    /// <summary>Whether the answer is read for tool calls (tools given and tool_choice not none).</summary>
    public bool Active => Tools.Count > 0 && Choice != "none";

    /// <summary>Whether the answer must be tool calls (tool_choice required or a named function), enforced while sampling.</summary>
    public bool Forced => Active && Choice is "required" or "function";

    /// <summary>The tools the model may call now: the named one for a named tool_choice, else all.</summary>
    public IReadOnlyList<ToolDefinition> Callable => Function is null ? Tools : [.. Tools.Where(t => t.Name == Function)];

    /// <summary>
    /// For a forced tool_choice, the constraint that makes the answer calls of the callable functions in the model's
    /// format. Beside a JSON <paramref name="answer"/> format (tool_choice auto), the answer is either such calls or
    /// that JSON: the model decides, as OpenAI's API lets it. Otherwise null.
    /// </summary>
    public Appliance.Engine.Sampling.ITokenConstraint? ConstraintFor(Models.ServedModel model, ResponseFormat? answer = null, string formatParam = "response_format")
    {
        var withJson = Active && !Forced && answer is { IsJson: true };
        if (!Forced && !withJson)
        {
            return null;
        }

        if (model.Engine.Model.EosTokenIds.Count == 0)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid(
                $"The model '{model.Id}' declares no end-of-sequence token, so an answer held to {(Forced ? "tool calls" : "tool calls or the JSON format")} could not end.", "tool_choice"));
        }

        var format = model.ToolCallFormat;
        if (withJson && format == ToolCallFormat.Llama3Json && !answer!.ExcludesNamedObjects)
        {
            // Llama 3 writes a call as a bare JSON object: a JSON answer that may have a "name" would be read as a call
            // whose arguments nobody checked, so the two cannot share one answer.
            throw new OpenAiRequestException(OpenAiError.Invalid(
                $"The model '{model.Id}' writes tool calls as plain JSON objects, so beside tools its JSON answer must be a strict json_schema of an object "
                + "without a 'name' property (additionalProperties false); this format could read as a call. Send such a schema, tool_choice \"none\" or \"required\", "
                + "or leave out the JSON format.", formatParam));
        }

        var (prefix, separator, suffix) = format.Frame;
        var (open, quotedName, beforeArguments, close) = format.CallLayout;
        if (withJson)
        {
            _ = answer!.ConstraintFor(model); // a response_format schema that cannot be enforced is refused naming it, not the tools
        }

        try
        {
            var outputs = Appliance.Grammar.StructuredOutputs.For(model.Engine.Tokenizer, model.Engine.Model.VocabularySize, format.Markers);
            var layout = new Appliance.Grammar.ToolCallLayout(prefix, separator, suffix, open, quotedName, beforeArguments, close);
            var functions = Callable.Select(t => (t.Name, t.Parameters, t.Strict, CustomTools.Grammar(t))).ToList();
            return withJson
                ? outputs.ToolCallsOrJson(layout, functions, ParallelIn(format), answer!.Schema, answer.Strict)
                : outputs.ToolCalls(layout, functions, ParallelIn(format));
        }
        catch (Appliance.Grammar.Schema.SchemaRefusedException refused)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"A function's parameters cannot be enforced: {refused.Message}", "tools", "unsupported_schema_keyword"));
        }
        catch (Appliance.Grammar.GrammarTooLargeException tooLarge)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"The functions' parameters are too large to enforce: {tooLarge.Message}.", "tools", "schema_too_large"));
        }
    }

    /// <summary>The calls an answer holds, as the model's format writes them; at most one unless parallel calls are allowed.</summary>
    public ParsedOutput Read(string output, ToolCallFormat format, string idPrefix = "call_")
    {
        var parsed = format.Parse(output, IdsFor(format, idPrefix));
        if (parsed.Calls.Any(call => Callable.FirstOrDefault(tool => tool.Name == call.Name) is not { } tool
            || (!Forced && tool.Freeform && !CustomTools.InputMatches(tool, FreeformInput.Of(call.Arguments)))))
        {
            // A "call" of a function nobody offered is the answer's text; so is a custom tool's call whose input does
            // not match its grammar, which only an unforced answer can write.
            return new ParsedOutput(output, []);
        }

        return ParallelIn(format) || parsed.Calls.Count <= 1 ? parsed : parsed with { Calls = [parsed.Calls[0]] };
    }

    /// <summary>Whether <paramref name="name"/> is a custom tool (its calls carry text input, not JSON arguments).</summary>
    public bool IsCustom(string name) => Tools.Any(tool => tool.Name == name && tool.Freeform);

    /// <summary>New call ids: the prefix and 24 hex digits; for Mistral, whose templates accept only nine letters and digits, nine.</summary>
    public static Func<string> IdsFor(ToolCallFormat format, string idPrefix = "call_") =>
        format == ToolCallFormat.Mistral ? () => Guid.NewGuid().ToString("N")[..9] : () => idPrefix + Guid.NewGuid().ToString("N")[..24];

    /// <summary>Parallel calls where the client allows them and the format has them (Llama 3's templates take one call a turn).</summary>
    private bool ParallelIn(ToolCallFormat format) => Parallel && format != ToolCallFormat.Llama3Json;

    /// <summary>What the audit record says: the names offered and (once answered) called, never the arguments.</summary>
    public string? AuditDetail(IEnumerable<ToolCall>? called)
    {
        if (Tools.Count == 0)
        {
            return null;
        }

        var offered = $"tools offered: {string.Join(", ", Tools.Select(t => t.Name))}; tool_choice: {Function ?? Choice}";
        if (called is null)
        {
            return offered;
        }

        var names = called.Select(c => c.Name).Distinct().ToList();
        return $"{offered}; called: {(names.Count == 0 ? "none" : string.Join(", ", names))}";
    }

    public static ToolUse Read(JsonFields fields)
    {
        var tools = ReadTools(fields.Element("tools"));
        var parallel = fields.OptionalBool("parallel_tool_calls") ?? true;
        if (fields.Element("tool_choice") is not { } choice || choice.ValueKind == JsonValueKind.Null)
        {
            return new ToolUse(tools, tools.Count > 0 ? "auto" : "none", null, parallel);
        }

        if (tools.Count == 0)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("'tool_choice' is only allowed when 'tools' are specified.", "tool_choice"));
        }

        if (choice.ValueKind == JsonValueKind.String)
        {
            return choice.GetString() is "none" or "auto" or "required" && choice.GetString() is { } mode
                ? new ToolUse(tools, mode, null, parallel)
                : throw new OpenAiRequestException(OpenAiError.Invalid($"Invalid value for 'tool_choice': '{choice.GetString()}'. Supported values are 'none', 'auto', 'required' or a named function.", "tool_choice"));
        }

        // {"type": "function", "function": {"name"}} or, for a custom tool, {"type": "custom", "custom": {"name"}}.
        var kind = choice.ValueKind == JsonValueKind.Object && choice.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String ? type.GetString() : null;
        var name = kind is "function" or "custom"
            && choice.TryGetProperty(kind, out var function) && function.ValueKind == JsonValueKind.Object
            && function.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String
                ? n.GetString()!
                : throw new OpenAiRequestException(OpenAiError.Invalid("'tool_choice' must be 'none', 'auto', 'required', {\"type\": \"function\", \"function\": {\"name\": ...}} or {\"type\": \"custom\", \"custom\": {\"name\": ...}}.", "tool_choice"));
        return tools.FirstOrDefault(t => t.Name == name) is { } named && (kind == "function" || named.Freeform)
            ? new ToolUse(tools, "function", name, parallel)
            : throw new OpenAiRequestException(OpenAiError.Invalid($"'tool_choice' names the {kind} tool '{name}', which is not among the tools.", "tool_choice"));
    }

    private static List<ToolDefinition> ReadTools(JsonElement? element)
    {
        if (element is not { } tools || tools.ValueKind == JsonValueKind.Null)
        {
            return [];
        }

        if (tools.ValueKind != JsonValueKind.Array)
        {
            throw JsonFields.TypeError("tools", "an array");
        }

        if (tools.GetArrayLength() == 0)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("'tools' must hold at least one function (leave it out for none).", "tools", "empty_array"));
        }

        if (tools.GetArrayLength() > 128)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("'tools' holds more than 128 functions.", "tools"));
        }

        var result = new List<ToolDefinition>();
        var index = 0;
        foreach (var tool in tools.EnumerateArray())
        {
            var param = $"tools[{index++}]";
            if (tool.ValueKind != JsonValueKind.Object || !tool.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
            {
                throw new OpenAiRequestException(OpenAiError.Invalid($"Missing or invalid '{param}.type'.", $"{param}.type"));
            }

            if (type.GetString() == "custom")
            {
                var custom = tool.TryGetProperty("custom", out var c) && c.ValueKind == JsonValueKind.Object
                    ? CustomTools.Read(c, $"{param}.custom")
                    : throw new OpenAiRequestException(OpenAiError.Invalid($"Missing required parameter: '{param}.custom'.", $"{param}.custom", "missing_required_parameter"));
                result.Add(result.Any(t => t.Name == custom.Name)
                    ? throw new OpenAiRequestException(OpenAiError.Invalid($"'{param}.custom.name': the tool '{custom.Name}' is listed twice.", $"{param}.custom.name"))
                    : custom);
                continue;
            }

            if (type.GetString() != "function")
            {
                throw new OpenAiRequestException(OpenAiError.Unsupported($"{param}.type", $"tools of type '{type.GetString()}' (only function and custom)"));
            }

            if (!tool.TryGetProperty("function", out var function) || function.ValueKind != JsonValueKind.Object)
            {
                throw new OpenAiRequestException(OpenAiError.Invalid($"Missing required parameter: '{param}.function'.", $"{param}.function", "missing_required_parameter"));
            }

            var name = function.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : null;
            if (name is null || !FunctionName().IsMatch(name))
            {
                throw new OpenAiRequestException(OpenAiError.Invalid($"'{param}.function.name' is required: 1 to 64 letters, digits, underscores or dashes.", $"{param}.function.name"));
            }

            if (result.Any(t => t.Name == name))
            {
                throw new OpenAiRequestException(OpenAiError.Invalid($"'{param}.function.name': the function '{name}' is listed twice.", $"{param}.function.name"));
            }

            var description = function.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
            var parameters = function.TryGetProperty("parameters", out var p) && p.ValueKind != JsonValueKind.Null
                ? p.ValueKind == JsonValueKind.Object && p.TryGetProperty("type", out var rootType) && rootType.ValueKind == JsonValueKind.String && rootType.GetString() == "object"
                    ? p.GetRawText()
                    : throw new OpenAiRequestException(OpenAiError.Invalid($"'{param}.function.parameters' must be a JSON Schema of type 'object'.", $"{param}.function.parameters"))
                : """{"type":"object","properties":{}}""";
            var strict = function.TryGetProperty("strict", out var s) && s.ValueKind == JsonValueKind.True;
            result.Add(new ToolDefinition(name, description, parameters, strict));
        }

        return result;
    }

    /// <summary>Whether a tool's name is what OpenAI accepts: 1 to 64 letters, digits, underscores or dashes.</summary>
    public static bool IsFunctionName(string name) => FunctionName().IsMatch(name);

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex FunctionName();
}
