using System.Text.Encodings.Web;
using System.Text.Json;
using static Appliance.Grammar.Language.Lang;

namespace Appliance.Grammar.Language;

/// <summary>
/// The pieces of JSON text as byte languages: whitespace, string characters, numbers, literals and the generic value.
/// Deliberately a little narrower than JSON where a model could otherwise never finish (whitespace runs are bounded,
/// numbers have at most 15 digits in each part and no exponent, so every value parses to the same double everywhere).
/// </summary>
internal static class JsonLanguage
{
    /// <summary>The longest run of whitespace between tokens: room for a newline and indentation four levels deep.</summary>
    public const int MaxWhitespace = 20;

    /// <summary>How deep a value of no given shape (json_object mode, a schema without a type) may nest.</summary>
    public const int GenericDepth = 5;

    private const int MaxDigits = 15;

    public static readonly JsonSerializerOptions Serialisation = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Lang Digit { get; } = Range('0', '9');

    /// <summary>Optional whitespace (space, newline, tab, carriage return), bounded.</summary>
    public static Lang Whitespace { get; } = Repeat(OneOf(" \n\t\r"), 0, MaxWhitespace);

    /// <summary>One character of a JSON string's content: an unescaped character (valid UTF-8) or an escape.</summary>
    public static Lang StringCharacter { get; } = Any(
        Class((0x20, 0x21), (0x23, 0x5B), (0x5D, 0x7F)), // ASCII except the quote and the backslash
        Seq(Class((0xC2, 0xDF)), Continuation()),
        Seq(Class((0xE0, 0xE0)), Class((0xA0, 0xBF)), Continuation()),
        Seq(Class((0xE1, 0xEC), (0xEE, 0xEF)), Continuation(), Continuation()),
        Seq(Class((0xED, 0xED)), Class((0x80, 0x9F)), Continuation()), // no surrogates
        Seq(Class((0xF0, 0xF0)), Class((0x90, 0xBF)), Continuation(), Continuation()),
        Seq(Class((0xF1, 0xF3)), Continuation(), Continuation(), Continuation()),
        Seq(Class((0xF4, 0xF4)), Class((0x80, 0x8F)), Continuation(), Continuation()),
        Seq(Text("\\"), Any(OneOf("\"\\/bfnrt"), Seq(Text("u"), HexNotSurrogate(), Hex(), Hex(), Hex()))));

    public static Lang FreeString { get; } = Seq(Text("\""), Repeat(StringCharacter, 0, null), Text("\""));

    public static Lang Integer { get; } = Seq(Optional(Text("-")), Any(Text("0"), Seq(Range('1', '9'), Repeat(Digit, 0, MaxDigits - 1))));

    public static Lang Number { get; } = Seq(Integer, Optional(Seq(Text("."), Repeat(Digit, 1, MaxDigits))));

    public static Lang Boolean { get; } = Any(Text("true"), Text("false"));

    public static Lang Null { get; } = Text("null");

    /// <summary>A string of between <paramref name="min"/> and <paramref name="max"/> characters.</summary>
    public static Lang StringOfLength(int min, int? max) => Seq(Text("\""), Repeat(StringCharacter, min, max), Text("\""));

    /// <summary>The JSON text of a value exactly as it is written in the output (used for enum, const and property names).</summary>
    public static Lang Literal(JsonElement value) => Text(JsonSerializer.Serialize(value, Serialisation));

    public static Lang Literal(string value) => Text(JsonSerializer.Serialize(value, Serialisation));

    /// <summary><c>open</c>, items separated by commas, <c>close</c>, with whitespace where pretty-printing puts it.</summary>
    public static Lang Container(string open, Lang item, int min, int? max, string close) =>
        Seq(Text(open), Whitespace, SeparatedList(item, Seq(Text(","), Whitespace), min, max), Whitespace, Text(close));

    /// <summary>Any JSON value nesting at most <paramref name="depth"/> containers deep.</summary>
    public static Lang AnyValue(int depth)
    {
        var scalars = Any(FreeString, Number, Boolean, Null);
        if (depth == 0)
        {
            return scalars;
        }

        var inner = AnyValue(depth - 1);
        return Any(scalars, AnyObject(inner), Container("[", inner, 0, null, "]"));
    }

    /// <summary>An object with any keys whose values are <paramref name="value"/>.</summary>
    public static Lang AnyObject(Lang value) => Container("{", Seq(FreeString, Text(":"), Whitespace, value), 0, null, "}");

    private static Lang Continuation() => Class((0x80, 0xBF));

    private static Lang Hex() => Class(('0', '9'), ('a', 'f'), ('A', 'F'));

    // \uD800-\uDFFF alone are not text: a lone surrogate fails strict parsers, so escapes keep clear of the whole block.
    private static Lang HexNotSurrogate() => Class(('0', '9'), ('a', 'c'), ('e', 'f'), ('A', 'C'), ('E', 'F'));
}
