namespace Appliance.Api.OpenAi;

/// <summary>Which OpenAI response family an endpoint writes.</summary>
internal enum ResponseKind
{
    /// <summary>chat.completion / chat.completion.chunk, with message or delta.</summary>
    Chat,

    /// <summary>text_completion, with text.</summary>
    Text,
}

/// <summary>What every object of one response shares.</summary>
internal sealed record ResponseHeader(ResponseKind Kind, string Id, long Created, string Model, string Fingerprint);
