using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Appliance.Prompting;
using Appliance.Prompting.Jinja;

namespace Appliance.Api.OpenAi;

/// <summary>What a chat template's failure means for the caller.</summary>
internal static class TemplateFailure
{
    /// <summary>
    /// A 400 when the conversation holds a tool call whose arguments are not a JSON object (a call cut short by
    /// max_tokens, sent back as it was): templates that read the arguments as a mapping fail on it, and the client can
    /// fix that. DeepSeek's templates get the arguments as written, so a failure there is not theirs. Any other
    /// failure is the template's, a 500.
    /// </summary>
    public static OpenAiRequestException Of(ChatTemplateException failure, Models.ServedModel model, IReadOnlyList<ChatMessage> messages, string param)
    {
        var asWritten = model.ToolCallFormat == ToolCallFormat.DeepSeekV3 || model.ToolCallFormat == ToolCallFormat.DeepSeekV31;
        if (!asWritten && messages.SelectMany(m => m.ToolCalls ?? []).FirstOrDefault(call => !IsObject(call.Arguments)) is { } unparsed)
        {
            return new OpenAiRequestException(OpenAiError.Invalid(
                $"The arguments of the earlier tool call '{unparsed.Name}' ({unparsed.Id}) are not a JSON object, and this model's chat template needs them as one "
                + $"({failure.Message}): send them as a JSON object.", param, "invalid_tool_call_arguments"));
        }

        return new OpenAiRequestException(new OpenAiError(StatusCodes.Status500InternalServerError, $"The model's chat template failed: {failure.Message}", "server_error", null, "chat_template_error"));
    }

    private static bool IsObject(string text)
    {
        try
        {
            using var parsed = JsonDocument.Parse(text);
            return parsed.RootElement.ValueKind == JsonValueKind.Object;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
