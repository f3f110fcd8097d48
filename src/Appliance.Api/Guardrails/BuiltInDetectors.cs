using System.Numerics;

namespace Appliance.Api.Guardrails;

/// <summary>A built-in detector: its pattern, the longest text it matches, its default mask, and a check of a match.</summary>
/// <param name="SpansWhitespace">Whether a match may hold a space or line break (a card in groups); one that cannot is
/// whole once a space follows it, so a streamed answer need not be held back further than its last word.</param>
internal sealed record Detector(string Name, string Pattern, int MaxLength, string Mask, bool SpansWhitespace, Func<string, bool>? IsValid = null);

/// <summary>
/// The sensitive data the appliance finds without a pattern from the operator. Numbers with a check digit (cards,
/// IBANs) are matched only when the check holds, so that order numbers and the like pass.
/// </summary>
internal static class BuiltInDetectors
{
    public static readonly IReadOnlyList<Detector> All =
    [
        // Bounded, so that a streamed answer need only be held back this far (a longer address is masked in part).
        new("Email", @"[A-Za-z0-9._%+\-]{1,48}@[A-Za-z0-9\-]{1,30}(?:\.[A-Za-z0-9\-]{1,30}){0,2}\.[A-Za-z]{2,12}", 154, "[EMAIL]", false),
        // As cards are written: 13 to 19 digits in a row, in groups of four, or Amex's and Diners' 4-6-5 and 4-6-4.
        new("CreditCard", @"\b(?:[0-9]{13,19}|[0-9]{4}(?:[ \-][0-9]{4}){2,3}(?:[ \-][0-9]{1,4})?|[0-9]{4}[ \-][0-9]{6}[ \-][0-9]{4,5})\b", 24, "[CREDIT_CARD]", true, CardNumberHolds),
        new("Iban", @"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\b", 64, "[IBAN]", true, IbanCheckHolds),
        new("Phone", @"\+[0-9]{1,3}(?:[ .\-]?\(?[0-9]{1,4}\)?){2,6}", 46, "[PHONE]", true, text => Digits(text).Length is >= 8 and <= 15),
        new("IpAddress", @"\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\b", 15, "[IP_ADDRESS]", false),
        new("UsSsn", @"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b", 11, "[SSN]", false, SsnIsPossible),
    ];

    public static Detector? Named(string name) => All.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase));

    private static string Digits(string text) => string.Concat(text.Where(char.IsAsciiDigit));


    private static bool CardNumberHolds(string text)
    {
        var digits = Digits(text);
        if (digits.Length is < 13 or > 19)
        {
            return false;
        }

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
