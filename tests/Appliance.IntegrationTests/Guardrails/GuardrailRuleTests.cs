using Appliance.Api.Guardrails;

namespace Appliance.IntegrationTests.Guardrails;

/// <summary>What each kind of rule finds, and the rules an operator might write that the start refuses.</summary>
public sealed class GuardrailRuleTests
{
    private static GuardrailRule Rule(GuardrailRuleOptions options)
    {
        var (rule, problem) = GuardrailRule.Compile(options, 0);
        Assert.Null(problem);
        return rule!;
    }

    private static List<string> Found(GuardrailRule rule, string text) => [.. rule.Matches(text).Select(m => text.Substring(m.Start, m.Length))];

    [Fact]
    public void Card_numbers_are_found_only_when_their_check_digit_holds()
    {
        var cards = Rule(new GuardrailRuleOptions { Name = "cards", Detector = "CreditCard" });

        Assert.Equal(["4111 1111 1111 1111", "5500-0000-0000-0004"], Found(cards, "pay with 4111 1111 1111 1111 or 5500-0000-0000-0004 please"));
        Assert.Empty(Found(cards, "order 4111 1111 1111 1112 shipped; call 1234567890123"));
        // Followed by its expiry or security code, the number is still found (and only the number).
        Assert.Equal(["4111 1111 1111 1111", "4111-1111-1111-1111"], Found(cards, "4111 1111 1111 1111 123 and 4111-1111-1111-1111 12/28"));
        // A number that does not check does not hide a card right after it.
        Assert.Equal(["4111 1111 1111 1111"], Found(cards, "ref 2024 4111 1111 1111 1111"));
        // Digits of other scripts, and single digits apart, are not card numbers.
        Assert.Empty(Found(cards, "\u0664\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661 and 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"));
    }

    [Fact]
    public void Ibans_are_found_only_when_their_check_digits_hold()
    {
        var ibans = Rule(new GuardrailRuleOptions { Name = "ibans", Detector = "iban" });

        Assert.Equal(["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"], Found(ibans, "to DE89 3704 0044 0532 0130 00 and GB82WEST12345698765432."));
        Assert.Empty(Found(ibans, "DE88 3704 0044 0532 0130 00"));
        Assert.Equal(["DE89 3704 0044 0532 0130 00"], Found(ibans, "pay DE89 3704 0044 0532 0130 00 EUR 10"));
    }

    [Fact]
    public void Emails_phone_numbers_addresses_and_social_security_numbers_are_found()
    {
        Assert.Equal(["ada.lovelace+work@mail.example.org"], Found(Rule(new() { Name = "e", Detector = "Email" }), "write to ada.lovelace+work@mail.example.org."));
        Assert.Equal(["+33 1 42 68 53 00"], Found(Rule(new() { Name = "p", Detector = "Phone" }), "call +33 1 42 68 53 00 now; not 12 3"));
        Assert.Equal(["10.0.12.7"], Found(Rule(new() { Name = "i", Detector = "IpAddress" }), "host 10.0.12.7 and version 1.2.3 and 999.1.1.1"));
        Assert.Equal(["078-05-1120"], Found(Rule(new() { Name = "s", Detector = "UsSsn" }), "ssn 078-05-1120, not 666-12-3456 or 123-00-4567"));
    }

    [Fact]
    public void Words_match_whole_and_regardless_of_case()
    {
        var words = Rule(new GuardrailRuleOptions { Name = "codenames", Words = ["Blue Falcon", "ass"] });

        Assert.Equal(["blue falcon", "ASS", "Blue\n  Falcon"], Found(words, "the blue falcon is a class of ASS. Blue\n  Falcon"));
        Assert.Equal(13, words.MaxLength); // the words and up to three spaces between them
    }

    [Fact]
    public void Ten_thousand_distinct_words_compile_and_each_is_found()
    {
        var random = new Random(5);
        var words = Enumerable.Range(0, 9_999)
            .Select(i => new string([.. Enumerable.Range(0, random.Next(4, 15)).Select(_ => (char)('a' + random.Next(26)))]) + i.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .ToList();
        var rule = Rule(new GuardrailRuleOptions { Name = "codenames", Words = [.. words, "red team"] });

        var text = $"Ask {words[17].ToUpperInvariant()}, not x{words[18]}, about {words[9_998]}: the red\n team, {words[4_000]}";
        Assert.Equal([words[17].ToUpperInvariant(), words[9_998], "red\n team", words[4_000]], Found(rule, text));
    }

    [Fact]
    public void Word_boundaries_are_those_of_regular_expressions_and_phrases_sharing_words_stay_apart()
    {
        var words = Rule(new GuardrailRuleOptions { Name = "w", Words = ["cafe", "secret", "C++", "#tag", .. Enumerable.Range(0, 2_000).Select(i => $"how to x{i}"), "how to cook"] });

        // A combining accent, connector punctuation and an underscore continue a word, as for \b.
        Assert.Empty(Found(words, "the cafe\u0301 and foo\u203Fsecret and my_secret"));
        Assert.Equal(["cafe", "C++", "#tag", "How To  Cook"], Found(words, "a cafe, C++11 and x#tag: How To  Cook"));
        // Many phrases sharing their first words, against a text of those words: nothing found, each place looked at once.
        Assert.Empty(Found(words, string.Concat(Enumerable.Repeat("how to ", 10_000))));
        Assert.Equal(["how to x1999"], Found(words, string.Concat(Enumerable.Repeat("how to ", 100)) + "x1999"));

        // Deep phrases of many word lengths against a long text of their first words: each place walks one path.
        var deep = Rule(new GuardrailRuleOptions { Name = "d", Words = [.. from i in Enumerable.Range(1, 50) from length in Enumerable.Range(2, 10) select string.Join(' ', Enumerable.Repeat("a", i)) + " " + new string('b', length)] });
        Assert.Empty(Found(deep, string.Concat(Enumerable.Repeat("a ", 50_000))));
        Assert.Equal(["a a  a\nbbb"], Found(deep, "x a a  a\nbbb y"));
    }

    [Fact]
    public void An_action_written_as_a_number_is_refused()
    {
        var (rule, problem) = GuardrailRule.Compile(new GuardrailRuleOptions { Name = "r", Words = ["x"], Action = (GuardrailAction)2 }, 0);

        Assert.Null(rule);
        Assert.Contains("Action must be Block or Mask", problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null, null, null, "exactly one of Detector, Pattern or Words")]
    [InlineData("Email", "x", null, "exactly one of Detector, Pattern or Words")]
    [InlineData("Passport", null, null, "is not a detector; known: Email")]
    [InlineData(null, "(?=secret)secret", null, "does not compile for the linear-time matcher")]
    [InlineData(null, "a*", null, "matches empty text")]
    [InlineData(null, "secret", 5000, "MaxLength must be between 1 and 1000")]
    [InlineData("Email", null, 10, "MaxLength applies to a Pattern only")]
    public void A_rule_that_cannot_work_is_refused_naming_its_setting(string? detector, string? pattern, int? maxLength, string expected)
    {
        var (rule, problem) = GuardrailRule.Compile(new GuardrailRuleOptions { Name = "r", Detector = detector, Pattern = pattern, MaxLength = maxLength }, 3);

        Assert.Null(rule);
        Assert.StartsWith("Guardrails:Rules:3", problem, StringComparison.Ordinal);
        Assert.Contains(expected, problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Nameless_and_twice_named_rules_are_refused()
    {
        var result = new GuardrailOptionsValidator().Validate(null, new GuardrailOptions
        {
            Rules = [new() { Name = "", Detector = "Email" }, new() { Name = "cards", Detector = "CreditCard" }, new() { Name = "Cards", Words = ["x"] }],
        });

        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.StartsWith("Guardrails:Rules:0:Name is missing", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.Contains("names 'cards' 2 times", StringComparison.Ordinal));
    }
}
