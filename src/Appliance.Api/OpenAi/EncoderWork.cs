using Appliance.Api.Audit;
using Appliance.Engine;
using Microsoft.AspNetCore.Http;

namespace Appliance.Api.OpenAi;

/// <summary>
/// Runs an encoder request's model work (embeddings, reranking) off the request thread, and charges the model runs it
/// did however it ends: a client must not escape its quota by hanging up, nor a request by failing half way. The work
/// stops between model runs when the client leaves or the request's time is up.
/// </summary>
internal static class EncoderWork
{
    /// <returns>The result; null when the request ended first (the timeout's 503 is written; a client gone hears nothing).</returns>
    public static async Task<T?> RunAsync<T>(HttpContext http, RequestDeadline deadline, string model, Func<Action<int>, CancellationToken, Task<T>> work)
        where T : class
    {
        var audit = RequestAudit.Of(http);
        var tokensRun = 0;
        void Ran(int tokens) => Interlocked.Add(ref tokensRun, tokens);
        try
        {
            return await Task.Run(() => work(Ran, deadline.Token), deadline.Token);
        }
        catch (EngineOverloadedException overloaded)
        {
            (audit.PromptTokens, audit.CompletionTokens) = (Volatile.Read(ref tokensRun), 0);
            throw new OpenAiRequestException(OpenAiError.Overloaded(model, overloaded.Message), overloaded.RetryAfterSeconds);
        }
        catch (Exception closed) when (closed is ObjectDisposedException or OpenAiRequestException)
        {
            // Unloaded (or the node stopping) while it ran, and not replaced: 503.
            (audit.PromptTokens, audit.CompletionTokens) = (Volatile.Read(ref tokensRun), 0);
            throw closed as OpenAiRequestException ?? ReplacedOnce.Unavailable(model);
        }
        catch (OperationCanceledException) when (deadline.Ended)
        {
            (audit.PromptTokens, audit.CompletionTokens, audit.FinishReason) = (Volatile.Read(ref tokensRun), 0, deadline.EndReason);
            if (deadline.TimedOut && !http.RequestAborted.IsCancellationRequested)
            {
                await OpenAiError.Unavailable(GenerationResponder.TimeoutMessage, "timeout").WriteAsync(http);
            }

            return null;
        }
    }
}
