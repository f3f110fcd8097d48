using System.Text;
using System.Text.Json;
using Appliance.Api.OpenAi;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>A custom tool's text input read out of the function arguments the model writes, whole or piece by piece.</summary>
public sealed class FreeformInputTests
{
    public static TheoryData<string> Inputs => new()
    {
        "*** Begin Patch\n*** Update File: a.py\n@@\n-x = 1\n+x = \"two\"\n*** End Patch",
        "tab\there, backslash \\ slash / quote \" done",
        "emoji 😀 and é and \u0001 control",
        string.Empty,
    };

    [Theory]
    [MemberData(nameof(Inputs))]
    public void Input_streamed_in_pieces_of_any_size_joins_into_the_whole_input(string input)
    {
        // Escaped as JSON writers do, and with every non-ASCII character as \u escapes (surrogate pairs included).
        foreach (var arguments in new[] { FreeformInput.Arguments(input), JsonSerializer.Serialize(new { input }), " { \"input\" :\n \"" + Escaped(input) + "\" }" })
        {
            for (var piece = 1; piece <= 7; piece++)
            {
                var stream = new FreeformInput.Stream();
                var joined = new StringBuilder();
                for (var at = 0; at < arguments.Length; at += piece)
                {
                    var text = stream.Add(arguments.Substring(at, Math.Min(piece, arguments.Length - at)));
                    Assert.False(text.Length > 0 && char.IsHighSurrogate(text[^1]), "half a character was sent");
                    joined.Append(text);
                }

                Assert.Equal(input, joined.ToString());
                Assert.True(stream.ReadsInput);
                Assert.Equal(input, FreeformInput.Of(arguments));
            }
        }
    }

    [Fact]
    public void Arguments_of_another_layout_stream_nothing_and_are_passed_on_whole()
    {
        var stream = new FreeformInput.Stream();
        Assert.Equal(string.Empty, stream.Add("{\"patch\": \"abc\", \"n\": 1}"));
        Assert.False(stream.ReadsInput);

        Assert.Equal("abc", FreeformInput.Of("{\"patch\": \"abc\"}")); // the only string there is
        Assert.Equal("{\"a\": \"x\", \"b\": \"y\"}", FreeformInput.Of("{\"a\": \"x\", \"b\": \"y\"}"));
        Assert.Equal("not json", FreeformInput.Of("not json"));
    }

    [Theory]
    [InlineData("{\"input\": \"a\\ud83db\"}")] // a high half alone, escaped
    [InlineData("{\"input\": \"a\\udc00b\"}")] // a low half alone
    [InlineData("{\"input\": \"a\\ud83d\\u0041\"}")] // a high half before an escape that is no low half
    [InlineData("{\"input\": \"a?b\"}")] // a high half alone, raw (put in below: attribute data cannot hold one)
    public void Half_a_character_becomes_the_replacement_character_whole_or_streamed(string arguments)
    {
        arguments = arguments.Replace("?", "\ud83d", StringComparison.Ordinal);
        var expected = arguments.Contains("u0041", StringComparison.Ordinal) ? "a\uFFFDA" : "a\uFFFDb";
        Assert.Equal(expected, FreeformInput.Of(arguments));
        for (var piece = 1; piece <= 4; piece++)
        {
            var stream = new FreeformInput.Stream();
            var joined = new StringBuilder();
            for (var at = 0; at < arguments.Length; at += piece)
            {
                joined.Append(stream.Add(arguments.Substring(at, Math.Min(piece, arguments.Length - at))));
            }

            Assert.Equal(expected, joined.ToString());
        }
    }

    [Fact]
    public void Arguments_cut_short_by_the_token_limit_give_the_input_so_far()
    {
        Assert.Equal("line one\nline t", FreeformInput.Of("{\"input\": \"line one\\nline t"));
        Assert.Equal("ab", FreeformInput.Of("{\"input\": \"ab\\u00")); // an escape cut in two is left out
    }

    private static string Escaped(string input)
    {
        var escaped = new StringBuilder();
        foreach (var c in input)
        {
            escaped.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                _ when c < 0x20 || c > 0x7e => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        }

        return escaped.ToString();
    }
}
