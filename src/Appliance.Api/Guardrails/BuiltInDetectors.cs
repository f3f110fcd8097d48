using System.Numerics;

namespace Appliance.Api.Guardrails;

/// <summary>A built-in detector: its pattern, the longest text it matches, its default mask, and a check of a match.</summary>
internal sealed record Detector(string Name, string Pattern, int MaxLength, string Mask, Func<string, bool>? IsValid = null);

/// <summary>
/// The sensitive data the appliance finds without a pattern from the operator. Numbers with a check digit (cards,
/// IBANs) are matched only when the check holds, so that order numbers and the like pass.
/// </summary>
internal static class BuiltInDetectors
{
    public static readonly IReadOnlyList<Detector> All =
    [
        new("Email", @"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}", 80, "[EMAIL]"),
        new("CreditCard", @"\b\d(?:[ \-]?\d){12,18}\b", 40, "[CREDIT_CARD]", LuhnHolds),
        new("Iban", @"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", 42, "[IBAN]", IbanCheckHolds),
        new("Phone", @"\+\d{1,3}(?:[ .\-]?\(?\d{1,4}\)?){2,6}", 30, "[PHONE]", text => Digits(text).Length is >= 8 and <= 15),
        new("IpAddress", @"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b", 15, "[IP_ADDRESS]"),
        new("UsSsn", @"\b\d{3}-\d{2}-\d{4}\b", 11, "[SSN]", SsnIsPossible),
    ];

    public static Detector? Named(string name) => All.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase));

    private static string Digits(string text) => string.Concat(text.Where(char.IsAsciiDigit));

    private static bool LuhnHolds(string text)
    {
        var digits = Digits(text);
        var sum = 0;
        for (var i = 0; i < digits.Length; i++)
        {
            var digit = digits[digits.Length - 1 - i] - '0';
            sum += i % 2 == 1 ? (digit * 2 > 9 ? (digit * 2) - 9 : digit * 2) : digit;
        }

        return sum % 10 == 0;
    }

    /// <summary>ISO 13616: the first four characters moved to the end, letters as 10 to 35, the number mod 97 is 1.</summary>
    private static bool IbanCheckHolds(string text)
    {
        var compact = text.Replace(" ", string.Empty, StringComparison.Ordinal);
        var rearranged = string.Concat((compact[4..] + compact[..4]).Select(c => char.IsAsciiDigit(c) ? c.ToString() : (c - 'A' + 10).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        return BigInteger.Parse(rearranged, System.Globalization.CultureInfo.InvariantCulture) % 97 == 1;
    }

    /// <summary>Numbers the US never issues (area 000, 666 or 9xx, group 00, serial 0000) are not social security numbers.</summary>
    private static bool SsnIsPossible(string text) =>
        text[..3] is not ("000" or "666") && text[0] != '9' && text[4..6] != "00" && text[7..] != "0000";
}
