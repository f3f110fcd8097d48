using System.Text.Json;
using Appliance.Grammar.Schema;
using Appliance.Tests.Common;

namespace Appliance.Grammar.Tests;

/// <summary>What each schema's language holds and leaves out, byte for byte.</summary>
public sealed class SchemaLanguageTests
{
    private const string Person = """{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"tags":{"type":"array","items":{"enum":["a","b"]}}},"required":["name","age","tags"],"additionalProperties":false}""";

    [Theory]
    [InlineData("""{"name":"Ada","age":36,"tags":["a","b"]}""")]
    [InlineData("""{"name": "Ada", "age": -1, "tags": []}""")]
    [InlineData("{\n  \"name\": \"\\u00e9\\n\",\n  \"age\": 0,\n  \"tags\": [\n    \"b\"\n  ]\n}")]
    [InlineData("""  {"name":"Zoë 中文 🙂","age":7,"tags":["a"]}""")]
    public void Texts_that_satisfy_the_schema_are_in_its_language(string text) => Assert.True(Matching.Automaton(Person).Accepts(text), text);

    [Theory]
    [InlineData("""{"age":36,"name":"Ada","tags":[]}""")] // out of the schema's order
    [InlineData("""{"name":"Ada","tags":[]}""")] // a required property missing
    [InlineData("""{"name":"Ada","age":36,"tags":["c"]}""")] // not in the enum
    [InlineData("""{"name":"Ada","age":3.5,"tags":[]}""")] // not an integer
    [InlineData("""{"name":"Ada","age":36,"tags":[],"extra":1}""")] // additionalProperties false
    [InlineData("""{"name":"Ada","age":036,"tags":[]}""")] // leading zero: not JSON
    [InlineData("""{"name":"A\"","age":1,"tags":[]} x""")] // text after the value
    [InlineData("""{"name":"tab	inside","age":1,"tags":[]}""")] // a raw control character
    [InlineData("""{"name":"\ud800","age":1,"tags":[]}""")] // a lone surrogate escape
    [InlineData("""{"name":"Ada","age":1234567890123456,"tags":[]}""")] // more than 15 digits
    public void Texts_that_break_the_schema_or_JSON_are_not(string text) => Assert.False(Matching.Automaton(Person).Accepts(text), text);

    [Fact]
    public void Whitespace_runs_are_bounded_so_a_model_cannot_stall_in_them()
    {
        var dfa = Matching.Automaton(Person);
        Assert.True(dfa.Accepts("{" + new string(' ', 20) + "\"name\":\"a\",\"age\":1,\"tags\":[]}"));
        Assert.False(dfa.Accepts("{" + new string(' ', 21) + "\"name\":\"a\",\"age\":1,\"tags\":[]}"));
    }

    [Fact]
    public void Optional_properties_may_be_left_out_in_any_combination_but_keep_their_order()
    {
        var dfa = Matching.Automaton("""{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"},"c":{"type":"integer"}},"required":["b"]}""", strict: false);
        Assert.True(dfa.Accepts("""{"b":1}"""));
        Assert.True(dfa.Accepts("""{"a":1,"b":2}"""));
        Assert.True(dfa.Accepts("""{"b":2,"c":3}"""));
        Assert.True(dfa.Accepts("""{"a":1,"b":2,"c":3}"""));
        Assert.False(dfa.Accepts("""{"a":1}"""));
        Assert.False(dfa.Accepts("""{"b":2,"a":1}"""));
        Assert.False(dfa.Accepts("""{,"b":2}"""));
    }

    [Fact]
    public void Recursion_through_a_ref_is_followed_to_a_fixed_depth()
    {
        var dfa = Matching.Automaton("""{"type":"object","$defs":{"n":{"type":"object","properties":{"kids":{"type":"array","items":{"$ref":"#/$defs/n"}}},"required":["kids"],"additionalProperties":false}},"properties":{"root":{"$ref":"#/$defs/n"}},"required":["root"],"additionalProperties":false}""");
        Assert.True(dfa.Accepts("""{"root":{"kids":[{"kids":[]},{"kids":[{"kids":[]}]}]}}"""));
        Assert.False(dfa.Accepts("""{"root":{"kids":[{"kids":[{"kids":[{"kids":[]}]}]}]}}""")); // deeper than the cut
    }

    [Theory]
    [InlineData("date", "2026-12-01", "2026-02-30")]
    [InlineData("date-time", "2026-12-01T09:30:00Z", "2026-12-01 09:30:00Z")]
    [InlineData("time", "23:59:59.123+01:00", "24:00:00Z")]
    [InlineData("uuid", "0f8fad5b-d9cb-469f-a165-70867728950e", "0f8fad5b-d9cb-469f-a165-70867728950")]
    [InlineData("ipv4", "192.168.0.254", "256.1.1.1")]
    [InlineData("email", "ada.lovelace@example.org", "ada@@example.org")]
    [InlineData("hostname", "node-1.appliance.local", "-node.local")]
    public void String_formats_hold_their_values_and_nothing_else(string format, string valid, string invalid)
    {
        var dfa = Matching.Automaton($$"""{"type":"string","format":"{{format}}"}""", strict: false);
        Assert.True(dfa.Accepts($"\"{valid}\""), valid);
        Assert.False(dfa.Accepts($"\"{invalid}\""), invalid);
    }

    /// <summary>Patterns: values as a regular expression engine reads them (given as the decoded string), and values it refuses.</summary>
    public static TheoryData<string, string, string> Patterns() => new()
    {
        { "^[A-Z]{3}-\\d{4}$", "ABC-1234", "AB-1234" },
        { "^\\+?[0-9 ]{6,12}$", "+33 123 456", "+33-12" },
        { "abc", "xx \"abc\" yy", "xxabyy" }, // unanchored: anywhere in the string
        { "^abc", "abc and more", "xabc" },
        { "c$", "ends in c", "c no more" },
        { "^(foo|bar)+$", "foobarfoo", "foob" },
        { "^(?:a|b)(?<rest>c?)$", "ac", "abc" },
        { "^a\\\"b\\\\c$", "a\"b\\c", "a\"bc" }, // an escaped quote and backslash, written escaped in JSON
        { "^.{2}$", "é漢", "abc" },
        { "^[à-ÿ]+$", "éèü", "e" },
        { "^[^a-z\\n]+$", "ABC 123 é", "ABc" },
        { "^\\w+@\\w+\\.com$", "ada_1@example.com", "ada@example.org" },
        { "^(😀)+ ok$", "😀😀 ok", "😀 ko" },
        { "^[\\u0041-\\u0043\\x61]$", "a", "D" },
        { "^a{2,3}b*?$", "aabbb", "aaaa" },
        { "^\\S+\\s\\S+$", "two words", "two  words" },
        { "^[\\d.-]+$", "3.14-2", "3,14" },
    };

    [Theory]
    [MemberData(nameof(Patterns))]
    public void String_patterns_hold_their_values_and_nothing_else(string pattern, string valid, string invalid)
    {
        var schema = JsonSerializer.Serialize(new { type = "string", pattern });
        var dfa = Matching.Automaton(schema, strict: false);
        Assert.True(dfa.Accepts(Quoted(valid)), valid);
        Assert.False(dfa.Accepts(Quoted(invalid)), invalid);
        Assert.Matches(pattern, valid); // the test's own values, as .NET's engine reads them
        Assert.DoesNotMatch(pattern, invalid);
    }

    [Fact]
    public void Patterns_too_long_or_nested_too_deep_are_refused_before_they_cost_anything()
    {
        foreach (var pattern in new[] { new string('a', 5000), new string('(', 40) + "a" + new string(')', 40) })
        {
            var refused = Assert.Throws<SchemaRefusedException>(() => Matching.Automaton(JsonSerializer.Serialize(new { type = "string", pattern }), strict: false));
            Assert.Equal("pattern", refused.Keyword);
        }
    }

    /// <summary>A JSON string as a model writes it: only the quote, the backslash and control characters escaped.</summary>
    private static string Quoted(string value) =>
        "\"" + string.Concat(value.Select(c => c switch { '"' => "\\\"", '\\' => "\\\\", '\n' => "\\n", < ' ' => $"\\u{(int)c:x4}", _ => c.ToString() })) + "\"";

    [Theory]
    [InlineData("""{"type":"string","pattern":"^(a)\\1$"}""", "backreferences")]
    [InlineData("""{"type":"string","pattern":"^(?=a)"}""", "lookahead")]
    [InlineData("""{"type":"string","pattern":"\\bword"}""", "word boundaries")]
    [InlineData("""{"type":"string","pattern":"^\\p{L}+$"}""", "Unicode property")]
    [InlineData("""{"type":"string","pattern":"^a{1000}$"}""", "at most 256")]
    [InlineData("""{"type":"string","pattern":"^a$b"}""", "anchor")]
    [InlineData("""{"type":"string","pattern":"^(ab$"}""", "never closed")]
    [InlineData("""{"type":"string","pattern":"^a**$"}""", "quantifier on a quantifier")]
    [InlineData("""{"type":"string","pattern":"^a+$","maxLength":3}""", "cannot be combined")]
    [InlineData("""{"type":"string","pattern":"^😀+$"}""", "above U+FFFF")]
    [InlineData("""{"type":"string","pattern":"^\\😀$"}""", "above U+FFFF")]
    [InlineData("""{"type":"string","pattern":"^\ud800$"}""", "lone surrogate")]
    [InlineData("""{"type":"string","pattern":"^(([a-z]?){256}){256}$"}""", "character positions")]
    [InlineData("""{"type":"string","pattern":"^[]a]$"}""", "engines read it differently")]
    [InlineData("""{"type":"string","pattern":"^[^]$"}""", "engines read it differently")]
    [InlineData("""{"type":"string","pattern":"^[a-z-[aeiou]]$"}""", "class subtraction")]
    [InlineData("""{"type":"string","pattern":"^a{,5}$"}""", "engines read it differently")]
    [InlineData("""{"type":"string","pattern":"^a{99999999999}$"}""", "at most 256")]
    [InlineData("""{"type":"string","pattern":"^\\é$"}""", "only ASCII punctuation")]
    [InlineData("""{"type":"string","pattern":"^(?<a-b>x)$"}""", "group name")]
    [InlineData("""{"type":"string","pattern":"^[😀]$"}""", "above U+FFFF")]
    public void Patterns_that_cannot_be_enforced_are_refused_saying_why(string schema, string why)
    {
        var refused = Assert.Throws<SchemaRefusedException>(() => Matching.Automaton(schema, strict: false));
        Assert.Equal("pattern", refused.Keyword);
        Assert.Contains(why, refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"type":"integer","minimum":1}""", "minimum")]
    [InlineData("""{"type":"number","multipleOf":2}""", "multipleOf")]
    [InlineData("""{"oneOf":[{"type":"string"}]}""", "oneOf")]
    [InlineData("""{"allOf":[{"type":"string"}]}""", "allOf")]
    [InlineData("""{"not":{"type":"string"}}""", "not")]
    [InlineData("""{"type":"array","uniqueItems":true}""", "uniqueItems")]
    [InlineData("""{"type":"array","prefixItems":[{"type":"string"}]}""", "prefixItems")]
    [InlineData("""{"type":"string","format":"ipv6"}""", "format")]
    [InlineData("""{"type":"object","patternProperties":{"^a":{}}}""", "patternProperties")]
    [InlineData("""{"$ref":"#/$defs/missing"}""", "$ref")]
    [InlineData("""{"type":"string","maxLength":5000}""", "maxLength")]
    [InlineData("""{"type":"colour"}""", "type")]
    public void Keywords_that_cannot_be_enforced_are_refused_by_name(string schema, string keyword)
    {
        var refused = Assert.Throws<SchemaRefusedException>(() => Matching.Automaton(schema, strict: false));
        Assert.Equal(keyword, refused.Keyword);
        Assert.Contains(keyword, refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}""", "additionalProperties")]
    [InlineData("""{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}},"required":["a"],"additionalProperties":false}""", "required")]
    [InlineData("""{"type":"array","items":{"type":"string"}}""", "type")]
    public void Strict_mode_keeps_OpenAIs_rules(string schema, string keyword)
    {
        Assert.Equal(keyword, Assert.Throws<SchemaRefusedException>(() => Matching.Automaton(schema, strict: true)).Keyword);
        _ = Matching.Automaton(schema, strict: false); // the same schema is fine without strict
    }

    [Theory]
    [InlineData("""{"type":"string","enum":["a","toolong"],"maxLength":3}""", "maxLength")]
    [InlineData("""{"const":"x","enum":["y"]}""", "enum")]
    [InlineData("""{"anyOf":[{"type":"object"}],"required":["x"]}""", "required")]
    public void A_keyword_beside_const_enum_or_anyOf_is_refused_rather_than_dropped(string schema, string keyword) =>
        Assert.Equal(keyword, Assert.Throws<SchemaRefusedException>(() => Matching.Automaton(schema, strict: false)).Keyword);

    [Fact]
    public void References_that_double_at_each_level_are_refused_before_they_expand()
    {
        // d0 uses d1 twice, d1 uses d2 twice...: 2^20 subschemas from two kilobytes, each chain only 20 deep.
        var defs = string.Join(',', Enumerable.Range(0, 20).Select(i =>
            $"\"d{i}\":" + """{"type":"object","properties":{"a":{"$ref":"#/$defs/NEXT"},"b":{"$ref":"#/$defs/NEXT"}},"required":["a","b"],"additionalProperties":false}""".Replace("NEXT", $"d{i + 1}", StringComparison.Ordinal)));
        var schema = """{"type":"object","$defs":{""" + defs + ""","d20":{"type":"null"}},"properties":{"root":{"$ref":"#/$defs/d0"}},"required":["root"],"additionalProperties":false}""";

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var refused = Assert.Throws<SchemaRefusedException>(() => Matching.Automaton(schema));
        Assert.Contains("subschemas", refused.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "refused, but only after expanding for a long time");
    }

    [Fact]
    public void A_long_chain_of_references_is_refused_instead_of_exhausting_the_stack()
    {
        var defs = string.Join(',', Enumerable.Range(0, 5000).Select(i => $"\"d{i}\":{{\"$ref\":\"#/$defs/d{i + 1}\"}}"));
        var schema = """{"$defs":{""" + defs + ""","d5000":{"type":"integer"}},"$ref":"#/$defs/d0"}""";

        Assert.Equal("$ref", Assert.Throws<SchemaRefusedException>(() => Matching.Automaton(schema, strict: false)).Keyword);
    }

    [Fact]
    public void An_object_with_thousands_of_optional_properties_compiles()
    {
        var properties = string.Join(',', Enumerable.Range(0, 3000).Select(i => $"\"p{i}\":{{\"type\":\"integer\"}}"));
        var dfa = Matching.Automaton("""{"type":"object","properties":{""" + properties + "}}", strict: false);

        Assert.True(dfa.Accepts("""{"p5":1,"p2999":2}"""));
        Assert.False(dfa.Accepts("""{"p2999":2,"p5":1}"""));
    }

    [Fact]
    public void A_recursive_schema_with_no_way_to_stop_is_refused()
    {
        var refused = Assert.Throws<SchemaRefusedException>(() => Matching.Automaton(
            """{"type":"object","$defs":{"n":{"type":"object","properties":{"next":{"$ref":"#/$defs/n"}},"required":["next"],"additionalProperties":false}},"properties":{"head":{"$ref":"#/$defs/n"}},"required":["head"],"additionalProperties":false}"""));
        Assert.Equal("$ref", refused.Keyword);
    }

    [Fact]
    public void Every_test_schema_compiles()
    {
        foreach (var (name, strict, schema) in StructuredOutputSchemas.All)
        {
            var dfa = Matching.Automaton(schema, strict);
            Assert.True(dfa.BytesToAccept(dfa.Start) < int.MaxValue, name);
        }
    }

    [Fact]
    public void Enum_values_keep_their_JSON_spelling()
    {
        var dfa = Matching.Automaton("""{"enum":["é \"q\"",1.50,null,{"k":[true]}]}""", strict: false);
        Assert.True(dfa.Accepts("\"é \\\"q\\\"\""));
        Assert.True(dfa.Accepts("1.50"));
        Assert.True(dfa.Accepts("""{"k":[true]}"""));
        Assert.False(dfa.Accepts("1.5"));
        _ = JsonDocument.Parse("\"é \\\"q\\\"\"");
    }
}
