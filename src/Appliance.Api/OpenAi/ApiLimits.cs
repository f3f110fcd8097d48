namespace Appliance.Api.OpenAi;

/// <summary>Limits on what one API request may ask for (configuration section "Limits").</summary>
public sealed record ApiLimits
{
    public long MaxBodyBytes { get; init; } = 4 * 1024 * 1024;

    public int MaxMessages { get; init; } = 512;

    public int MaxN { get; init; } = 8;

    public int MaxTokens { get; init; } = 4096;

    /// <summary>A requested token ceiling, capped to <see cref="MaxTokens"/> (null stays null: the request named none).</summary>
    public int? CapMaxTokens(long? requested) => requested is { } asked ? (int)Math.Min(asked, MaxTokens) : null;

    /// <summary>
    /// Whether <paramref name="requested"/> reaches <see cref="MaxTokens"/>: such a value is a ceiling (clients send
    /// the model's advertised maximum), met by what the context leaves rather than refused when the prompt is long.
    /// </summary>
    public bool Caps(long? requested) => requested >= MaxTokens;

    /// <summary>A request still generating after this long is cancelled.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// How long after <see cref="RequestTimeout"/> a stream may take to deliver its last frames (the timeout event) to a
    /// client that reads slowly; past it the connection is closed, so a client that stopped reading holds nothing.
    /// </summary>
    public TimeSpan RequestTimeoutGrace { get; init; } = TimeSpan.FromSeconds(10);
}
