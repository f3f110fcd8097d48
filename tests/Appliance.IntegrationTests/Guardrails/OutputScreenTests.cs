using System.Text;
using Appliance.Api.Guardrails;
using Appliance.Engine.Output;

namespace Appliance.IntegrationTests.Guardrails;

/// <summary>
/// An answer screened as it streams, in pieces of any size, reads as the whole answer screened at once: every match
/// masked whole, and a blocked match ends the answer where it begins, none of it sent.
/// </summary>
public sealed class OutputScreenTests
{
    private const string Answer = "Contact ada@example.org or bob.smith@corp.example.com; the card is 4111 1111 1111 1111, ok? Then mail eve@x.io.";

    private static RequestGuardrails Guard(params GuardrailRuleOptions[] rules) =>
        new("m", [], [.. rules.Select((r, i) => GuardrailRule.Compile(r, i).Rule!)], new GuardrailTally(), null);

    private static (string Text, bool Blocked) Stream(IOutputScreen screen, string answer, Random pieces)
    {
        var sent = new StringBuilder();
        for (var at = 0; at < answer.Length;)
        {
            var length = Math.Min(pieces.Next(1, 6), answer.Length - at);
            var screened = screen.Push(answer.Substring(at, length));
            sent.Append(screened.Text);
            at += length;
            if (screened.Blocked)
            {
                return (sent.ToString(), true);
            }
        }

        var rest = screen.Flush();
        return (sent.Append(rest.Text).ToString(), rest.Blocked);
    }

    [Fact]
    public void Streamed_pieces_of_any_size_are_masked_as_the_whole_answer_is()
    {
        var guard = Guard(new GuardrailRuleOptions { Name = "emails", Detector = "Email", Action = GuardrailAction.Mask });
        const string Expected = "Contact [EMAIL] or [EMAIL]; the card is 4111 1111 1111 1111, ok? Then mail [EMAIL].";
        var asInput = new RequestGuardrails("m", [GuardrailRule.Compile(new() { Name = "emails", Detector = "Email", Action = GuardrailAction.Mask }, 0).Rule!], [], new GuardrailTally(), null);
        Assert.Equal(Expected, asInput.Screen(Answer, "messages"));

        for (var seed = 0; seed < 50; seed++)
        {
            Assert.Equal((Expected, false), Stream(guard.OutputScreen!(), Answer, new Random(seed)));
        }
    }

    [Fact]
    public void A_blocked_match_ends_the_answer_before_it_and_sends_nothing_of_it()
    {
        var guard = Guard(
            new GuardrailRuleOptions { Name = "emails", Detector = "Email", Action = GuardrailAction.Mask },
            new GuardrailRuleOptions { Name = "cards", Detector = "CreditCard", Action = GuardrailAction.Block });

        for (var seed = 0; seed < 50; seed++)
        {
            Assert.Equal(("Contact [EMAIL] or [EMAIL]; the card is ", true), Stream(guard.OutputScreen!(), Answer, new Random(seed)));
        }
    }

    [Fact]
    public void A_word_cut_between_releases_is_still_one_word_to_the_rules()
    {
        var guard = Guard(new GuardrailRuleOptions { Name = "word", Words = ["ass"], Action = GuardrailAction.Mask });
        const string Long = "The class passed the classic assessment; a bass, an ass and a mass of glass passed. Classes.";
        const string Expected = "The class passed the classic assessment; a bass, an [WORD] and a mass of glass passed. Classes.";

        for (var seed = 0; seed < 50; seed++)
        {
            Assert.Equal((Expected, false), Stream(guard.OutputScreen!(), Long, new Random(seed)));
        }
    }

    [Fact]
    public void A_character_outside_the_basic_plane_is_never_sent_in_halves()
    {
        var screen = Guard(new GuardrailRuleOptions { Name = "word", Words = ["xyz"], Action = GuardrailAction.Mask }).OutputScreen!();
        var emoji = char.ConvertFromUtf32(0x1F600);
        var sent = new List<string>();
        foreach (var piece in Enumerable.Repeat(emoji, 20))
        {
            sent.Add(screen.Push(piece).Text);
        }

        sent.Add(screen.Flush().Text);
        Assert.All(sent.Where(s => s.Length > 0), s => Assert.False(char.IsHighSurrogate(s[^1]) || char.IsLowSurrogate(s[0]), "a release split a character"));
        Assert.Equal(string.Concat(Enumerable.Repeat(emoji, 20)), string.Concat(sent));
    }

    [Fact]
    public void A_block_inside_what_a_mask_would_take_ends_the_answer_before_the_masks_start()
    {
        var guard = Guard(
            new GuardrailRuleOptions { Name = "emails", Detector = "Email", Action = GuardrailAction.Mask },
            new GuardrailRuleOptions { Name = "internal", Words = ["acme-internal"] });
        var screen = guard.OutputScreen!();
        var sent = new StringBuilder();
        var blocked = false;
        foreach (var token in new[] { "Write", " to", " jane", "@acme", "-internal", ".com", " today" })
        {
            var screened = screen.Push(token);
            sent.Append(screened.Text);
            if (blocked = screened.Blocked)
            {
                break;
            }
        }

        Assert.Equal(("Write to ", true), (sent.ToString(), blocked));
    }

    [Fact]
    public void Masks_that_overlap_leave_nothing_of_either_in_clear()
    {
        var guard = Guard(
            new GuardrailRuleOptions { Name = "phones", Detector = "Phone", Action = GuardrailAction.Mask },
            new GuardrailRuleOptions { Name = "cards", Detector = "CreditCard", Action = GuardrailAction.Mask });

        for (var seed = 0; seed < 20; seed++)
        {
            var (text, _) = Stream(guard.OutputScreen!(), "call +44 4111 1111 1111 1111 now", new Random(seed));
            Assert.Equal("call [PHONE] now", text);
        }
    }

    [Fact]
    public void A_mask_never_hides_a_match_that_blocks()
    {
        var guard = new RequestGuardrails("m",
            [GuardrailRule.Compile(new() { Name = "digits", Pattern = "[0-9]{2} [0-9]{4}", Action = GuardrailAction.Mask }, 0).Rule!,
             GuardrailRule.Compile(new() { Name = "cards", Detector = "CreditCard" }, 1).Rule!], [], new GuardrailTally(), null);

        var refused = Assert.Throws<Appliance.Api.OpenAi.OpenAiRequestException>(() => guard.Screen("ref 12 4111111111111111", "input"));
        Assert.Contains("'cards'", refused.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_rule_whose_matches_hold_no_space_holds_back_only_the_last_word()
    {
        var screen = Guard(new GuardrailRuleOptions { Name = "emails", Detector = "Email", Action = GuardrailAction.Mask }).OutputScreen!();

        Assert.Equal("Write to ", screen.Push("Write to ada@exa").Text);
        Assert.Equal("[EMAIL] ", screen.Push("mple.org now").Text);
        Assert.Equal("now", screen.Flush().Text);
    }

    [Fact]
    public void Text_is_held_back_no_further_than_the_longest_match_a_rule_finds()
    {
        var screen = Guard(new GuardrailRuleOptions { Name = "secret", Words = ["project gemini"], Action = GuardrailAction.Mask }).OutputScreen!();

        var first = screen.Push("The plan is named after the twins, in short: project gem");
        Assert.Equal("The plan is named after the twins, in ", first.Text); // up to a space, 14 characters or more from the end
        var second = screen.Push("ini. Nothing else");
        Assert.Equal("short: ", second.Text); // the match is masked once it ends in settled text
        Assert.Equal("[SECRET]. Nothing else", screen.Flush().Text);
    }

    [Fact]
    public void Input_is_masked_or_refused_and_each_intervention_counted_for_the_audit()
    {
        var tally = new GuardrailTally();
        var guard = new RequestGuardrails("m",
            [GuardrailRule.Compile(new() { Name = "emails", Detector = "Email", Action = GuardrailAction.Mask }, 0).Rule!,
             GuardrailRule.Compile(new() { Name = "cards", Detector = "CreditCard" }, 1).Rule!], [], tally, null);

        Assert.Equal("a [EMAIL] b [EMAIL]", guard.Screen("a x@y.org b z@w.net", "input"));
        var refused = Assert.Throws<Appliance.Api.OpenAi.OpenAiRequestException>(() => guard.Screen("pay 4111111111111111 to x@y.org", "messages[2]"));
        Assert.Equal(("content_filter", "messages[2]"), (refused.Error.Code, refused.Error.Param));
        Assert.DoesNotContain("4111", refused.Error.Message, StringComparison.Ordinal);
        Assert.Equal("guardrails: input masked emails x2, input blocked cards", tally.Detail);
        Assert.Null(guard.OutputScreen);
    }
}
