using System.Globalization;
using Microsoft.AspNetCore.Http;

namespace Appliance.Api.Quotas;

/// <summary>
/// The rate-limit headers OpenAI and Anthropic send with every answer, filled from the caller's quotas, so that clients
/// that pace themselves by them (batch jobs, gateways, the SDKs' raw responses) see where they stand before a 429.
/// </summary>
public static class RateLimitHeaders
{
    /// <summary>Sets the headers of the API the request was made to; a limit that is not set has none.</summary>
    public static void Write(HttpContext http, QuotaHeadroom headroom, DateTimeOffset now)
    {
        var headers = http.Response.Headers;
        var anthropic = http.Request.Path.StartsWithSegments("/v1/messages", StringComparison.Ordinal);
        foreach (var (kind, allowance) in new[] { ("requests", headroom.Requests), ("tokens", headroom.Tokens) })
        {
            if (allowance is null)
            {
                continue;
            }

            var limit = allowance.Limit.ToString(CultureInfo.InvariantCulture);
            var remaining = allowance.Remaining.ToString(CultureInfo.InvariantCulture);
            if (anthropic)
            {
                // Anthropic gives the reset as an RFC 3339 time.
                headers[$"anthropic-ratelimit-{kind}-limit"] = limit;
                headers[$"anthropic-ratelimit-{kind}-remaining"] = remaining;
                headers[$"anthropic-ratelimit-{kind}-reset"] = allowance.ResetsAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
            }
            else
            {
                // OpenAI gives the time until the reset, written as Go writes a duration (1s, 6m0s, 17ms).
                headers[$"x-ratelimit-limit-{kind}"] = limit;
                headers[$"x-ratelimit-remaining-{kind}"] = remaining;
                headers[$"x-ratelimit-reset-{kind}"] = Duration(allowance.ResetsAt - now);
            }
        }
    }

    /// <summary>A duration as Go prints one, rounded up to the millisecond below a second and to the second above.</summary>
    public static string Duration(TimeSpan duration)
    {
        if (duration <= TimeSpan.Zero)
        {
            return "0s";
        }

        if (duration < TimeSpan.FromSeconds(1))
        {
            return $"{(long)Math.Ceiling(duration.TotalMilliseconds)}ms";
        }

        var seconds = (long)Math.Ceiling(duration.TotalSeconds);
        var (hours, minutes, rest) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
        return hours > 0 ? $"{hours}h{minutes}m{rest}s" : minutes > 0 ? $"{minutes}m{rest}s" : $"{rest}s";
    }
}
