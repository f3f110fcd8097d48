using Appliance.Runtime.Onnx.Tokenization.HuggingFace;

namespace Appliance.Runtime.Onnx.Tests.Tokenization;

/// <summary>Split regexes match code points as Hugging Face's engine does, including characters outside the BMP.</summary>
public sealed class CodePointRegexTests
{
    [Theory]
    [InlineData(@" ?[\p{P}\p{S}]+", " 👋🏽🚀x", " 👋🏽🚀")] // emoji are symbols (So, Sk)
    [InlineData(@"\p{L}+", "𐌰𐌱𐌲 gothic", "𐌰𐌱𐌲")] // Gothic letters are supplementary letters
    [InlineData(@"[^\s\p{L}]+", "🚀𐌰", "🚀")] // a negated class stops before a supplementary letter, never inside it
    [InlineData(@"\P{L}+", "🚀!𐌰", "🚀!")]
    [InlineData(@"\p{N}{1,3}", "𝟏𝟐𝟑𝟒", "𝟏𝟐𝟑")] // mathematical digits: three code points, six UTF-16 units
    [InlineData(@"[a-z]+", "abc🚀", "abc")] // classes without categories are left alone
    public void The_first_match_is_the_code_point_match(string pattern, string text, string expected)
    {
        var (_, codePoints) = CodePointRegex.Create(pattern);
        Assert.Equal(expected, codePoints.Match(text).Value);
    }

    [Theory]
    [InlineData(@"\p{Q}", "unknown Unicode category 'Q'")]
    [InlineData(@"[\p{L}", "never closed")]
    [InlineData(@"[\p{L}-[a]]", "nested or subtracted")]
    public void Patterns_it_cannot_translate_are_refused(string pattern, string expected)
    {
        var error = Assert.ThrowsAny<ArgumentException>(() => CodePointRegex.Create(pattern));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }
}
