using Microsoft.AspNetCore.Http;

namespace Appliance.Api.Audit;

/// <summary>
/// What a request's handlers learn that its audit record needs (model, digest, usage, finish, why it was refused).
/// The host's audit middleware puts one on every request and records it when the request ends.
/// </summary>
public sealed class RequestAudit(long startedAt)
{
    /// <summary>TimeProvider timestamp when the request arrived.</summary>
    public long StartedAt { get; } = startedAt;

    /// <summary>Set once the accepted record is durable: the request's end is then recorded as completed.</summary>
    public bool Accepted { get; set; }

    public string? Model { get; set; }

    public string? ModelDigest { get; set; }

    public int? PromptTokens { get; set; }

    public int? CompletionTokens { get; set; }

    public string? FinishReason { get; set; }

    /// <summary>The longest time a choice of the request waited in the engine's queue.</summary>
    public double? QueueMs { get; set; }

    /// <summary>TimeProvider timestamp of the first generated text, for time to first token.</summary>
    public long? FirstTokenAt { get; set; }

    public string? ErrorCode { get; set; }

    /// <summary>The tools a chat request offered and those the answer called (names only, never arguments).</summary>
    public string? Tools { get; set; }

    /// <summary>What the operator's guardrails masked or blocked in this request (rules and counts, never the text).</summary>
    public Guardrails.GuardrailTally Guardrails { get; } = new();

    /// <summary>Where a request came from when not from a caller directly (a batch's line); the audit detail names it.</summary>
    public string? Origin { get; init; }

    /// <summary>Why the request was refused (for the auditor; never told to the caller).</summary>
    public string? Reason { get; set; }

    /// <summary>The prompt as the caller sent it (JSON), only for models that record content; null otherwise.</summary>
    public string? Prompt { get; private set; }

    /// <summary>The generated text per choice, collected while <see cref="Prompt"/> is set.</summary>
    public IReadOnlyDictionary<int, string> Completion => _completion.ToDictionary(c => c.Key, c => c.Value.ToString());

    private readonly Dictionary<int, System.Text.StringBuilder> _completion = [];

    /// <summary>The request used the model's tokenizer only (counting, tokenizing): recorded as request.tokenized.</summary>
    public bool TokenizerOnly { get; private set; }

    /// <summary>
    /// For a request that used a model's tokenizer and ran nothing: its record keeps the model but is of its own kind,
    /// with what was done in its detail and no token counts, so that usage reports, prices and the quota seed (which
    /// read completed records) do not count it as a model request.
    /// </summary>
    public void RecordTokenizerOnly(string what)
    {
        TokenizerOnly = true;
        Reason = $"{what}; nothing generated";
        PromptTokens = null;
    }

    /// <summary>Starts recording content for this request (the model's configuration asks for it).</summary>
    public void RecordContent(string prompt) => Prompt = prompt;

    /// <summary>Records a conversation the same way whichever API dialect brought it (roles, text, tool calls and results).</summary>
    public void RecordConversation(IEnumerable<Appliance.Prompting.ChatMessage> messages) =>
        RecordContent(System.Text.Json.JsonSerializer.Serialize(messages.Select(m => new
        {
            role = m.Role,
            content = m.Content,
            tool_calls = m.ToolCalls?.Select(c => new { id = c.Id, name = c.Name, arguments = c.Arguments }),
            tool_call_id = m.ToolCallId,
        })));

    public void AppendCompletion(int choice, string text)
    {
        if (Prompt is null || text.Length == 0)
        {
            return;
        }

        lock (_completion)
        {
            if (!_completion.TryGetValue(choice, out var builder))
            {
                _completion[choice] = builder = new System.Text.StringBuilder();
            }

            builder.Append(text);
        }
    }

    /// <summary>The request's audit state, or a detached one when no audit middleware runs (unit tests, tools).</summary>
    public static RequestAudit Of(HttpContext http)
    {
        if (http.Features.Get<RequestAudit>() is { } audit)
        {
            return audit;
        }

        audit = new RequestAudit(0);
        http.Features.Set(audit);
        return audit;
    }
}

/// <summary>Which models keep the text of their requests in the audit log (encrypted).</summary>
public interface IContentRecording
{
    bool Records(string modelId);
}

/// <summary>Records that a request passed every check, before its answer starts; false means it must be refused (503).</summary>
public interface IAccessRecorder
{
    Task<bool> TryAcceptAsync(HttpContext http);
}
