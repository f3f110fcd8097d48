using System.Text;
using Appliance.Grammar.Vocabulary;

namespace Appliance.Grammar.Tests;

/// <summary>
/// A byte-level vocabulary shaped like a real one: every single byte (ids 0-255), then seeded multi-byte tokens mixing
/// JSON punctuation, words, digits, spaces and non-ASCII text, then an end token with no text.
/// </summary>
internal static class ToyVocabulary
{
    private static readonly string[] Fragments =
        ["{\"", "\":", "\": \"", "\",", "\", \"", "\"}", "}", "]}", "[\"", "[{", "},", "true", "false", "null", " \"", ": ", ", ",
         "\n  ", "\n    ", "name", "id", "é", "中文", "🙂", "\\n", "\\\"", "\\u00e9", "-", ".", "@", "T", "Z", ":"];

    public static byte[]?[] Build(int multiByteTokens, int seed, out int endToken)
    {
        var random = new Random(seed);
        var tokens = new List<byte[]?>();
        for (var value = 0; value < 256; value++)
        {
            tokens.Add([(byte)value]);
        }

        const string Letters = "abcdefghijklmnopqrstuvwxyz0123456789 ";
        for (var i = 0; i < multiByteTokens; i++)
        {
            var text = new StringBuilder();
            var parts = random.Next(1, 4);
            for (var p = 0; p < parts; p++)
            {
                if (random.Next(3) == 0)
                {
                    text.Append(Fragments[random.Next(Fragments.Length)]);
                }
                else
                {
                    for (var c = random.Next(1, 6); c > 0; c--)
                    {
                        text.Append(Letters[random.Next(Letters.Length)]);
                    }
                }
            }

            tokens.Add(Encoding.UTF8.GetBytes(text.ToString()));
        }

        // Parts of a character, as byte-level vocabularies have them: the first two bytes of "中".
        tokens.Add([0xE4, 0xB8]);
        endToken = tokens.Count;
        tokens.Add(null);
        return [.. tokens];
    }

    public static TokenVocabulary Vocabulary(int multiByteTokens, int seed, out int endToken)
    {
        var bytes = Build(multiByteTokens, seed, out endToken);
        return TokenVocabulary.From(bytes, bytes.Length);
    }
}
