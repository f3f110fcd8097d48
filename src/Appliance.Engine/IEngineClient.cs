using Appliance.Engine.Requests;

namespace Appliance.Engine;

/// <summary>Where HTTP and the engine meet: submit a request, read its own stream of deltas.</summary>
public interface IEngineClient
{
    ModelInfo Model { get; }

    ITokenizer Tokenizer { get; }

    /// <summary>
    /// Queues a request. The returned stream yields its deltas; disposing the stream cancels the request.
    /// Throws <see cref="EngineOverloadedException"/> when the queue is full and
    /// <see cref="ArgumentException"/> when the request cannot fit the model.
    /// </summary>
    GenerationStream Submit(GenerationRequest request);
}
