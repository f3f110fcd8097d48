using System.Text;
using System.Text.Json.Nodes;
using Appliance.Api.Batches;

namespace Appliance.Host.Batches;

/// <summary>The lines of a batch's output and error files, as OpenAI writes them.</summary>
internal static class BatchOutput
{
    /// <summary>An answered request: its status, request id and body (an error answer goes to the error file).</summary>
    public static string Answered(BatchLine line, InProcessAnswer answer) => new JsonObject
    {
        ["id"] = RequestId(),
        ["custom_id"] = line.CustomId,
        ["response"] = new JsonObject
        {
            ["status_code"] = answer.Status,
            ["request_id"] = answer.RequestId,
            ["body"] = Body(answer.Body),
        },
        ["error"] = null,
    }.ToJsonString();

    /// <summary>A request that never ran (the batch expired or was cancelled first): no response, the reason as error.</summary>
    public static string NotRun(BatchLine line, string code, string message) => new JsonObject
    {
        ["id"] = RequestId(),
        ["custom_id"] = line.CustomId,
        ["response"] = null,
        ["error"] = new JsonObject { ["code"] = code, ["message"] = message },
    }.ToJsonString();

    public static byte[] File(IEnumerable<string> lines)
    {
        using var content = new MemoryStream();
        foreach (var line in lines)
        {
            content.Write(Encoding.UTF8.GetBytes(line));
            content.WriteByte((byte)'\n');
        }

        return content.ToArray();
    }

    /// <summary>
    /// The tokens of the answered requests, read from each answer's usage in whichever dialect its endpoint speaks
    /// (chat and legacy completions, embeddings, Responses).
    /// </summary>
    public static BatchUsage Usage(IEnumerable<string> answeredLines)
    {
        long input = 0, cached = 0, output = 0, reasoning = 0;
        foreach (var line in answeredLines)
        {
            if (JsonNode.Parse(line)?["response"]?["body"]?["usage"] is not JsonObject usage)
            {
                continue;
            }

            input += Number(usage["prompt_tokens"] ?? usage["input_tokens"]);
            output += Number(usage["completion_tokens"] ?? usage["output_tokens"]);
            cached += Number((usage["prompt_tokens_details"] ?? usage["input_tokens_details"])?["cached_tokens"]);
            reasoning += Number((usage["completion_tokens_details"] ?? usage["output_tokens_details"])?["reasoning_tokens"]);
        }

        return new BatchUsage(input, cached, output, reasoning);
    }

    private static long Number(JsonNode? node) => node is JsonValue value && value.TryGetValue<long>(out var number) ? number : 0;

    private static string RequestId() => $"batch_req_{Guid.NewGuid():N}";

    private static JsonNode? Body(byte[] body)
    {
        if (body.Length == 0)
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(body);
        }
        catch (System.Text.Json.JsonException)
        {
            return Encoding.UTF8.GetString(body); // not JSON: kept as text rather than lost
        }
    }
}
