namespace Appliance.Engine.Output;

/// <summary>
/// Finds stop strings in streamed text, even when they arrive split over several tokens. Text that could be the
/// start of a stop string is held back until it is known not to be one; a stop string itself is never emitted.
/// </summary>
public sealed class StopStringFilter(IReadOnlyList<string> stopStrings)
{
    private string _held = string.Empty;

    public bool Stopped { get; private set; }

    /// <summary>The stop string that ended the text (the earliest in it; the longest of those starting there), or null.</summary>
    public string? Matched { get; private set; }

    /// <summary>Adds text and returns the part that is safe to emit.</summary>
    public string Push(string text)
    {
        if (Stopped)
        {
            return string.Empty;
        }

        if (stopStrings.Count == 0)
        {
            return text;
        }

        var combined = _held + text;
        var stopAt = EarliestStop(combined);
        if (stopAt >= 0)
        {
            Stopped = true;
            Matched = stopStrings.Where(stop => string.CompareOrdinal(combined, stopAt, stop, 0, stop.Length) == 0 && stopAt + stop.Length <= combined.Length)
                .MaxBy(stop => stop.Length);
            _held = string.Empty;
            return combined[..stopAt];
        }

        var hold = LongestPrefixSuffix(combined);
        _held = combined[^hold..];
        return combined[..^hold];
    }

    /// <summary>Releases held text at the end of generation (it was not a stop string).</summary>
    public string Flush()
    {
        var held = _held;
        _held = string.Empty;
        return Stopped ? string.Empty : held;
    }

    private int EarliestStop(string text)
    {
        var earliest = -1;
        foreach (var stop in stopStrings)
        {
            var at = text.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (earliest < 0 || at < earliest))
            {
                earliest = at;
            }
        }

        return earliest;
    }

    /// <summary>Length of the longest end of <paramref name="text"/> that begins some stop string.</summary>
    private int LongestPrefixSuffix(string text)
    {
        var longest = 0;
        foreach (var stop in stopStrings)
        {
            for (var length = Math.Min(stop.Length - 1, text.Length); length > longest; length--)
            {
                if (text.AsSpan(text.Length - length).SequenceEqual(stop.AsSpan(0, length)))
                {
                    longest = length;
                    break;
                }
            }
        }

        return longest;
    }
}
