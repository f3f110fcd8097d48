using Appliance.Audit.Chain;
using Appliance.Audit.Export;

namespace Appliance.Audit.Tests;

public sealed class SyslogFormatterTests
{
    [Fact]
    public void Structured_data_values_escape_quote_backslash_and_bracket_and_header_fields_stay_ascii()
    {
        var record = AuditChainFixture.Record(1) with
        {
            Time = new DateTimeOffset(2026, 11, 28, 9, 30, 15, 123, TimeSpan.Zero).AddTicks(4567),
            Username = "o\"brien\\x]y",
            Status = 403,
        };
        var entry = new AuditEntry(7, "nœud 1", record, CanonicalJson.GenesisHash, CanonicalJson.Hash(7, "nœud 1", record, CanonicalJson.GenesisHash));

        var message = SyslogFormatter.Format(entry, "appliance", "audit@32473");

        Assert.StartsWith("<108>1 2026-11-28T09:30:15.123456Z n_ud_1 appliance - request.accepted [audit@32473 seq=\"7\" ", message, StringComparison.Ordinal);
        Assert.Contains("user=\"o\\\"brien\\\\x\\]y\"", message, StringComparison.Ordinal);
        Assert.EndsWith("\"hash\":\"" + entry.Hash + "\"}", message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_message_cut_to_fit_a_datagram_ends_at_a_character_boundary_with_the_marker()
    {
        var message = System.Text.Encoding.UTF8.GetBytes("<110>1 header [sd seq=\"1\"] " + new string('é', 400));

        var cut = SyslogFormatter.Truncate(message, 200);

        Assert.Equal(message, SyslogFormatter.Truncate(message, message.Length)); // what fits is untouched
        Assert.True(cut.Length <= 200, $"{cut.Length} bytes");
        var text = new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true).GetString(cut); // valid UTF-8 throughout
        Assert.StartsWith("<110>1 header [sd seq=\"1\"] éé", text, StringComparison.Ordinal);
        Assert.EndsWith(SyslogFormatter.TruncationMarker, text, StringComparison.Ordinal);
    }
}
