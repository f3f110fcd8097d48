using static Appliance.Grammar.Language.Lang;

namespace Appliance.Grammar.Language;

/// <summary>
/// The string formats OpenAI's structured outputs document, as byte languages of the string's content. Each is a
/// subset of what the format allows (dates in years 1000-9999, no 29 February, bounded label lengths), so anything
/// generated passes a validator of the format.
/// </summary>
internal static class StringFormats
{
    public static readonly IReadOnlyList<string> Supported = ["date", "time", "date-time", "uuid", "ipv4", "email", "hostname"];

    /// <summary>The quoted string of the format, or null when the format is not supported.</summary>
    public static Lang? Of(string format) => Content(format) is { } content ? Seq(Text("\""), content, Text("\"")) : null;

    private static Lang? Content(string format) => format switch
    {
        "date" => Date(),
        "time" => Time(),
        "date-time" => Seq(Date(), Text("T"), Time()),
        "uuid" => Seq(Hex(8), Text("-"), Hex(4), Text("-"), Hex(4), Text("-"), Hex(4), Text("-"), Hex(12)),
        "ipv4" => Seq(Octet(), Text("."), Octet(), Text("."), Octet(), Text("."), Octet()),
        "email" => Seq(Word(), Repeat(Seq(OneOf("._+-"), Word()), 0, 3), Text("@"), Hostname()),
        "hostname" => Hostname(),
        _ => null,
    };

    private static Lang Digit => Range('0', '9');

    private static Lang Two(char firstLow, char firstHigh, char secondLow, char secondHigh) => Seq(Range(firstLow, firstHigh), Range(secondLow, secondHigh));

    private static Lang Date()
    {
        var year = Seq(Range('1', '9'), Digit, Digit, Digit);
        var anyMonth = Any(Two('0', '0', '1', '9'), Two('1', '1', '0', '2'));
        var day28 = Any(Two('0', '0', '1', '9'), Two('1', '1', '0', '9'), Two('2', '2', '0', '8'));
        var thirtyDays = Any(Text("01"), Text("03"), Text("04"), Text("05"), Text("06"), Text("07"), Text("08"), Text("09"), Text("10"), Text("11"), Text("12"));
        var thirtyOneDays = Any(Text("01"), Text("03"), Text("05"), Text("07"), Text("08"), Text("10"), Text("12"));
        return Seq(year, Text("-"), Any(
            Seq(anyMonth, Text("-"), day28),
            Seq(thirtyDays, Text("-"), Any(Text("29"), Text("30"))),
            Seq(thirtyOneDays, Text("-"), Text("31"))));
    }

    private static Lang Time()
    {
        var hour = Any(Two('0', '1', '0', '9'), Two('2', '2', '0', '3'));
        var minute = Two('0', '5', '0', '9');
        var fraction = Optional(Seq(Text("."), Repeat(Digit, 1, 6)));
        var offset = Any(Text("Z"), Seq(OneOf("+-"), hour, Text(":"), minute));
        return Seq(hour, Text(":"), minute, Text(":"), minute, fraction, offset);
    }

    private static Lang Hex(int count) => Repeat(Class(('0', '9'), ('a', 'f')), count, count);

    private static Lang Octet() => Any(
        Seq(Text("25"), Range('0', '5')),
        Seq(Text("2"), Range('0', '4'), Digit),
        Seq(Text("1"), Digit, Digit),
        Seq(Range('1', '9'), Digit),
        Digit);

    private static Lang Alphanumeric => Class(('a', 'z'), ('A', 'Z'), ('0', '9'));

    private static Lang Word() => Repeat(Alphanumeric, 1, 20);

    private static Lang Label() => Seq(Word(), Repeat(Seq(Text("-"), Word()), 0, 2));

    private static Lang Hostname() => Seq(Label(), Repeat(Seq(Text("."), Label()), 0, 2), Text("."), Repeat(Class(('a', 'z')), 2, 8));
}
