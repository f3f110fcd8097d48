using Appliance.Grammar.Schema;
using Appliance.Tests.Common;

namespace Appliance.Grammar.Tests;

/// <summary>
/// Lark grammars (custom tools' grammar format) read as the language of their texts, checked against the real Lark
/// parser (Debian's python3-lark): the same verdict on texts in and out of each grammar.
/// </summary>
public sealed class LarkGrammarTests
{
    /// <summary>A patch format in the spirit of Codex's apply_patch tool: plain terminals, regular expressions, no recursion.</summary>
    public const string Patch = """
        start: "*** Begin Patch" LF hunk+ "*** End Patch" LF?
        hunk: add | delete | update
        add: "*** Add File: " path LF added+
        delete: "*** Delete File: " path LF
        update: "*** Update File: " path LF ("*** Move to: " path LF)? change+
        change: "@@" (" " /[^\n]+/)? LF line+
        line: /[ +-][^\n]*/ LF
        added: "+" TEXT? LF
        path: /[^\n]+/
        TEXT: /[^\n]+/

        %import common.LF
        """;

    /// <summary>Arithmetic: left recursion, nesting through parentheses, imported terminals, ignored spaces.</summary>
    public const string Arithmetic = """
        ?start: sum
        ?sum: product
            | sum "+" product   -> add
            | sum "-" product   -> sub
        ?product: atom | product "*" atom | product "/" atom
        ?atom: NUMBER | "-" atom | "(" sum ")"

        %import common.NUMBER
        %import common.WS_INLINE
        %ignore WS_INLINE
        """;

    /// <summary>Commands: case-insensitive keywords, bounded repetition, a grouped import, terminals made of terminals.</summary>
    public const string Commands = """
        start: command (";" command) ~ 0..3
        command: "move"i " " DIRECTION " " STEPS | "stop"i
        DIRECTION.2: "north" | "south" | "east" | "west"
        STEPS: DIGIT ~ 1..3
        %import common (DIGIT)
        """;

    /// <summary>Rows of fields: escaped strings, a character class, optional fields.</summary>
    public const string Rows = """
        start: row (LF row)*
        row: field? ("," field?)*
        field: ESCAPED_STRING | /[a-z0-9 ]+/ | "0x" HEXDIGIT+
        %import common.ESCAPED_STRING
        %import common.HEXDIGIT
        %import common.LF
        """;

    /// <summary>A query: keywords beside names of letters, so a name may run into the next keyword without the ignored spaces.</summary>
    public const string Query = """
        start: "SELECT" NAME ("," NAME)* "FROM" NAME ("WHERE" NAME "=" NUMBER)?
        %import common.CNAME -> NAME
        %import common.INT -> NUMBER
        %import common.WS
        %ignore WS
        """;

    /// <summary>Common's terminals keep their own parts: this DIGIT is not the one INT is made of.</summary>
    public const string Shadowing = """
        start: INT | DIGIT
        DIGIT: "x"
        %import common.INT
        """;

    /// <summary>Values of anything but spaces and commas beside ignored spaces: the class leaves the spaces out in every reading.</summary>
    public const string Values = """
        start: VALUE ("," VALUE)*
        VALUE: /[^\s,]+/
        %import common.WS
        %ignore WS
        """;

    public static readonly TheoryData<string, string[]> Samples = new()
    {
        {
            Patch, [
                "*** Begin Patch\n*** Add File: a.txt\n+hello\n+\n*** End Patch\n",
                "*** Begin Patch\n*** Update File: src/a.py\n*** Move to: src/b.py\n@@ def f():\n-    return 1\n+    return 2\n     pass\n*** Delete File: old.md\n*** End Patch",
                "*** Begin Patch\n*** End Patch\n",
                "*** Begin Patch\n*** Add File: a.txt\nhello\n*** End Patch\n",
                "*** Begin Patch\n*** Update File: a\n@@\n*** End Patch\n",
                "*** Begin Patch\n*** Delete File: x\n*** End Patch\n\n",
            ]
        },
        {
            Arithmetic, ["1", "1+2", " 1 + 2 * (3 - 4) ", "-(2.5e3)/7", "1 + 2 + 3 + 4", "(1)", "1 +", "1 2", "((1)", "+1", "1\t+ 2", "1\n+2"]
        },
        {
            Commands, ["stop", "STOP;Move north 12", "move east 123;stop;stop;stop", "move up 1", "move east 1234", "stop;stop;stop;stop;stop", "Move West 7", "move  west 7"]
        },
        {
            Query, ["SELECT a FROM b", "SELECT a,b FROM c WHERE d = 1", "SELECT  a , b\nFROM c", "SELECT aFROM b", "SELECT a FROM b WHERE c=", "select a from b"]
        },
        {
            Shadowing, ["1", "123", "x", "xx", "1x"]
        },
        {
            Values, ["a, b", "a,b ,c", " x ", "a b", "a,,b", "é,ü"]
        },
        {
            Rows, ["a,b", "\"x, \\\"y\\\"\",0xFF,\n,,", "", "abc", "a,B", "\"open", "0x", "a\n\nb", "\"\\n\""]
        },
    };

    [Theory]
    [MemberData(nameof(Samples))]
    public void Texts_are_in_the_grammar_exactly_when_Lark_parses_them(string grammar, string[] texts)
    {
        var ours = TextGrammar.Lark(grammar);
        var reference = ReferenceLark.Parses(grammar, texts);

        Assert.Contains(true, reference); // each sample set has texts in the grammar and out of it
        Assert.Contains(false, reference);
        for (var i = 0; i < texts.Length; i++)
        {
            Assert.True(reference[i] == ours.Matches(texts[i]), $"{(reference[i] ? "Lark parses" : "Lark refuses")} {System.Text.Json.JsonSerializer.Serialize(texts[i])}");
        }
    }

    [Fact]
    public void Rules_that_name_each_other_many_times_are_refused_for_their_size_not_read_forever()
    {
        // Each rule names the next twice: 2^39 ways down. Read once per rule, then refused when unfolded too far.
        var rules = string.Join('\n', Enumerable.Range(1, 40).Select(i => i < 40 ? $"r{i}: r{i + 1} | r{i + 1} \"b\"" : $"r{i}: \"a\""));

        var refused = Assert.Throws<SchemaRefusedException>(() => TextGrammar.Lark("start: r1 \"x\"\n" + rules));

        Assert.Contains("unfolds into more than", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_terminal_that_may_match_nothing_is_an_optional_token_as_in_Codexs_patch_grammar()
    {
        // Python's Lark refuses /(.*)/ (a zero-width match); OpenAI's engine takes it, and so does the appliance.
        var grammar = TextGrammar.Lark("""
            start: "*** Begin Patch" LF ("+" /(.*)/ LF)+ "*** End Patch"
            %import common.LF
            """);

        Assert.True(grammar.Matches("*** Begin Patch\n+\n+x = 1\n*** End Patch"));
        Assert.False(grammar.Matches("*** Begin Patch\n*** End Patch"));
    }

    [Fact]
    public void A_patch_grammar_shaped_like_Codexs_apply_patch_is_taken_whole()
    {
        // The shape of the grammar Codex sends with its apply_patch tool: aliases, optional parts, zero-width lines.
        var grammar = TextGrammar.Lark("""
            start: begin_patch hunk+ end_patch
            begin_patch: "*** Begin Patch" LF
            end_patch: "*** End Patch" LF?
            hunk: add_hunk | delete_hunk | update_hunk
            add_hunk: "*** Add File: " filename LF add_line+
            delete_hunk: "*** Delete File: " filename LF
            update_hunk: "*** Update File: " filename LF change_move? change?
            filename: /(.+)/
            add_line: "+" /(.*)/ LF -> line
            change_move: "*** Move to: " filename LF
            change: (change_context | change_line)+ eof_line?
            change_context: ("@@" | "@@ " /(.+)/) LF
            change_line: ("+" | "-" | " ") /(.*)/ LF
            eof_line: "*** End of File" LF
            %import common.LF
            """);

        Assert.True(grammar.Matches("*** Begin Patch\n*** Update File: src/app.py\n@@ def greet():\n-    print(\"Hi\")\n+    print(\"Hello\")\n \n*** Add File: b.txt\n+\n+b\n*** Delete File: c.txt\n*** End Patch\n"));
        Assert.False(grammar.Matches("*** Begin Patch\n*** Update File: a.py\nprint()\n*** End Patch\n")); // a changed line needs its + - or space
        Assert.False(grammar.Matches("*** Begin Patch\n*** End Patch\n")); // at least one hunk
    }

    [Fact]
    public void Groups_nested_beyond_the_bound_are_refused_rather_than_exhausting_the_stack()
    {
        var grammar = "start: " + new string('(', 10_000) + "\"a\"" + new string(')', 10_000);

        var refused = Assert.Throws<SchemaRefusedException>(() => TextGrammar.Lark(grammar));

        Assert.Contains("nest more than", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_name_that_may_run_into_the_next_keyword_is_always_followed_by_the_ignored_space()
    {
        var ours = TextGrammar.Lark(Query);

        Assert.False(ours.Matches("SELECT aFROM b")); // Lark reads "aFROM" as one name
        Assert.True(ours.Matches("SELECT a FROM b"));
        Assert.True(ours.Matches("SELECT a,b FROM c")); // "," cannot be part of a name: no space needed there
    }

    [Fact]
    public void Lists_written_as_recursion_are_whole_but_nesting_deeper_than_unrolled_is_not_produced()
    {
        // Five references on the way round, each with a number and the ignored spaces: two levels are what fits.
        var ours = TextGrammar.Lark(Arithmetic);
        string[] texts = ["((1))", "(((1)))", "1+2+3+4+5+6+7-8*9*9*9/9"];

        Assert.All(ReferenceLark.Parses(Arithmetic, texts), Assert.True);
        Assert.Equal(Appliance.Grammar.Language.LarkGrammar.MinRecursion, ours.Recursion);
        Assert.True(ours.Matches(texts[0]));
        Assert.False(ours.Matches(texts[1])); // a subset of the grammar: whatever is produced parses
        Assert.True(ours.Matches(texts[2])); // left recursion at a rule's end is a loop, of any length
    }

    [Fact]
    public void Nesting_is_unrolled_deeper_where_eight_forced_calls_of_it_still_fit()
    {
        // Each level of values nests objects and arrays of values: four references on the way round.
        const string Values = """
            start: value
            ?value: object | array | STRING | NUMBER | "true" | "false" | "null"
            object: "{" [pair ("," pair)*] "}"
            pair: STRING ":" value
            array: "[" [value ("," value)*] "]"
            STRING: /"[a-z]*"/
            %import common.NUMBER
            """;
        var ours = TextGrammar.Lark(Values);
        string[] texts = ["[[1]]", "{\"a\":[{\"b\":1}]}", "[[[[[[[[1]]]]]]]]"];

        Assert.All(ReferenceLark.Parses(Values, texts), Assert.True);
        Assert.InRange(ours.Recursion, 3, Appliance.Grammar.Language.LarkGrammar.MaxRecursion); // three here
        Assert.True(ours.Matches(texts[0]));
        Assert.True(ours.Matches(texts[1])); // three levels: deeper than the two a fixed unrolling gave
        Assert.False(ours.Matches(texts[2]));

        // A forced call may hold eight copies of the grammar as the decoder writes it (inside JSON strings).
        var calls = Appliance.Grammar.Language.Lang.SeparatedList(ours.JsonContent(), Appliance.Grammar.Language.Lang.Text(","), 1, StructuredOutputs.MaxParallelCalls);
        var nfa = new Appliance.Grammar.Automaton.Nfa();
        calls.Emit(nfa, nfa.Start);
        Assert.True(nfa.Count < Appliance.Grammar.Automaton.Nfa.MaxStates / 2, $"{nfa.Count} states");
    }

    [Fact]
    public void A_grammar_without_recursion_to_unroll_takes_the_deepest_level()
    {
        var ours = TextGrammar.Lark(Patch);
        Assert.Equal(Appliance.Grammar.Language.LarkGrammar.MaxRecursion, ours.Recursion);
    }

    [Theory]
    [InlineData("rule: \"a\"", "no 'start' rule")]
    [InlineData("start: missing", "'missing' is not defined")]
    [InlineData("start: A\nA: b\nb: \"x\"", "refers to the rule 'b'")]
    [InlineData("start: \"a\"\n%declare B", "%declare is not supported")]
    [InlineData("start: pair{\"a\"}\npair{x}: x x", "templates")]
    [InlineData("start: /ab/i", "flags")]
    [InlineData("start: /(a)\\1/", "backreference")]
    [InlineData("start: X\n%import mylib.X", "only Lark's common terminals")]
    [InlineData("start: C_COMMENT\n%import common.C_COMMENT", "not among the terminals")]
    [InlineData("start: \"a\"\nstart: \"b\"", "defined twice")]
    [InlineData("start: s\ns: \"(\" s \")\"", "produces no text")]
    [InlineData("start: \"a\" ~ 3..2", "counts down")]
    [InlineData("start: \"abc", "never closed")]
    [InlineData("start: A \"a\"\nA: /a+/", "may run into \"a\"")]
    [InlineData("start: A \"b\"\nA: \"a\" \"b\"?", "the terminal A may run into")]
    [InlineData("start: NAME NAME\n%import common.CNAME -> NAME", "(or %ignore whitespace")]
    [InlineData("start: \"a\" \"\"", "an empty string")]
    [InlineData("start: \"a\"\n%ignore /x*/", "can match the empty text")]
    [InlineData("start: \"\\0\"", "escape \\0")]
    [InlineData("start: \"\\ud800\"", "surrogate")]
    [InlineData("start: \"^\"..\"z\"", "the range")]
    [InlineData("start: /^a/", "anchor to the whole input")]
    [InlineData("start: /\\u005cd/", "decodes it")]
    [InlineData("Start: \"a\"", "neither a rule name")]
    [InlineData("start: (NAME NEWLINE)+\n%import common.CNAME -> NAME\n%import common.NEWLINE\n%import common.WS\n%ignore WS", "The ignored the terminal WS may run into the terminal NEWLINE")]
    [InlineData("start: VALUE (\",\" VALUE)*\nVALUE: /\\S+/\n%ignore /#[^\\n]*/", "may run into")]
    [InlineData("start: TEXT (\";\" TEXT)*\nTEXT: /[a-z][a-z ]*/\n%import common.WS\n%ignore WS", "may run into the ignored")]
    [InlineData("start: A\nA: \"a\" A | \"b\"", "made of itself")]
    [InlineData("start: LINE \"\\r\\n\"\nLINE: /.+/", "may run into")] // Rust's and Python's '.' take the \r
    [InlineData("start: /[^;]*x/ \"\\u00e9\"", "may run into")] // a negated class takes what it does not name
    [InlineData("start: A\nA: \"a\" -> b", "alias ('->') inside a terminal")]
    [InlineData("start: num\n%import common.INT -> num", "not a terminal name")]
    [InlineData("start: \"\U0001F600\"..\"\U0001F603\"", "basic plane")]
    [InlineData("start: A\nA: ((\"a\" ~ 256) ~ 256) ~ 7", "too large")]
    public void A_grammar_that_cannot_be_read_or_enforced_is_refused_saying_why(string grammar, string reason)
    {

        var refused = Assert.Throws<SchemaRefusedException>(() => TextGrammar.Lark(grammar));

        Assert.Contains(reason, refused.Message, StringComparison.Ordinal);
    }
}
