namespace Appliance.Api.OpenAi;

/// <summary>
/// An encoder model closed under a request (a reload opened its new version and closed the one the request had found):
/// the request runs once more on the version the catalog now holds, so that a reload costs no client an error. A model
/// closed and not replaced (unloaded, the node stopping) ends the request with 503.
/// </summary>
internal static class ReplacedOnce
{
    public static Task<TResult> RunAsync<TModel, TResult>(TModel model, Func<TModel> current, Func<TModel, Task<TResult>> run)
        where TModel : class =>
        RunAsync(model, current, run, m => m);

    /// <param name="identity">What tells two versions apart (the object that closes).</param>
    public static async Task<TResult> RunAsync<TModel, TResult>(TModel model, Func<TModel> current, Func<TModel, Task<TResult>> run, Func<TModel, object?> identity)
    {
        try
        {
            return await run(model);
        }
        catch (ObjectDisposedException)
        {
            TModel replacement;
            try
            {
                replacement = current(); // 503 when the model is no longer ready
            }
            catch (OpenAiRequestException wrongKind) when (wrongKind.Error.Status == 400)
            {
                throw new ObjectDisposedException("the model became another kind", wrongKind); // a reload switched it: retry
            }

            if (ReferenceEquals(identity(replacement), identity(model)))
            {
                throw;
            }

            try
            {
                return await run(replacement);
            }
            catch (ArgumentException changed)
            {
                // The new version takes less than the one the request was checked against (a lower ContextLength).
                throw new ObjectDisposedException("the model changed under the request", changed);
            }
        }
    }

    public static OpenAiRequestException Unavailable(string model) =>
        new(OpenAiError.Unavailable($"The model '{model}' was unloaded on this node while the request ran; retry.", "model_unavailable"));
}
