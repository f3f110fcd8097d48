using Appliance.Audit.Pricing;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Appliance.Api.Audit;
using Appliance.Audit.Stores;
using Appliance.Host.Options;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;
using Microsoft.Extensions.Configuration;

namespace Appliance.IntegrationTests.Audit;

/// <summary>
/// Chargeback in money, not just tokens: with Pricing, the usage reports give each row's cost at each model's rate on
/// each day, say which models had no rate (their tokens are in no cost), and refuse prices that cannot be meant.
/// </summary>
public sealed class UsagePricingTests : IDisposable
{
    private readonly TempFolder _root = new("usage-pricing");

    [Fact]
    public async Task The_usage_reports_price_each_model_s_tokens_at_the_rate_of_the_day_and_name_the_unpriced_models()
    {
        var folder = _root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, folder);
        var tomorrow = DateTime.UtcNow.AddDays(1).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        using var logs = new ListLoggerProvider();
        await using var running = await RunningAppliance.StartAsync(logs,
            $"--Models:priced:Path={folder}", $"--Models:unpriced:Path={folder}", "--Models:priced:Aliases:0=cheap",
            "--Appliance:BuiltInEmbeddings=false", $"--Appliance:DataFolder={_root.Combine("data")}", "--Logging:LogLevel:Default=None",
            "--Logging:LogLevel:Appliance.Host=Warning", "--Pricing:Currency=EUR",
            "--Pricing:Models:cheap:InputPerMillion=1", "--Pricing:Models:cheap:OutputPerMillion=1", // under the alias: prices nothing
            "--Pricing:Models:retired:InputPerMillion=1", "--Pricing:Models:retired:OutputPerMillion=1", // kept for past usage
            // Today falls under the earlier rate (one per token in and out); the current one starts tomorrow. The id is
            // written in another case: configuration keys are.
            "--Pricing:Models:PRICED:Since=" + tomorrow, "--Pricing:Models:PRICED:InputPerMillion=5", "--Pricing:Models:PRICED:OutputPerMillion=5",
            "--Pricing:Models:PRICED:Earlier:0:InputPerMillion=1000000", "--Pricing:Models:PRICED:Earlier:0:OutputPerMillion=2000000");
        await running.WaitUntilReadyAsync();
        // What would price nothing, and what has no price, is said once at start.
        var warnings = logs.Logger.Entries.Where(e => e.EventId.Id is 4060 or 4061).Select(e => e.Message).ToList();
        Assert.Contains("Pricing:Models:cheap is an alias of priced: prices go under the id", warnings);
        Assert.Contains(warnings, w => w.StartsWith("Pricing:Models:retired is no model this node serves", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.StartsWith("Model unpriced has no price", StringComparison.Ordinal));
        Assert.DoesNotContain(warnings, w => w.StartsWith("Model priced ", StringComparison.Ordinal));
        using (var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"], groups: ["/research"])))
        {
            Assert.Equal(HttpStatusCode.OK, (await Chat(ada, "priced")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await Chat(ada, "unpriced")).StatusCode);
        }

        foreach (var path in new[] { "/admin/usage?by=team", "/audit/usage?by=team" })
        {
            using var report = JsonDocument.Parse(await running.Http.GetStringAsync(path));
            Assert.Equal("EUR", report.RootElement.GetProperty("currency").GetString());
            Assert.Equal(["unpriced"], report.RootElement.GetProperty("unpricedModels").EnumerateArray().Select(m => m.GetString()));
            var row = Assert.Single(report.RootElement.GetProperty("data").EnumerateArray());
            Assert.Equal("/research", row.GetProperty("key").GetString());
            Assert.Equal(2, row.GetProperty("requests").GetInt64()); // both models' requests in one row
            Assert.Equal(6, row.GetProperty("completionTokens").GetInt64());

            // Only the priced model's tokens, at the earlier rate: 1 a prompt token, 2 a completion token.
            using var byModel = JsonDocument.Parse(await running.Http.GetStringAsync(path.Replace("team", "model", StringComparison.Ordinal)));
            var priced = byModel.RootElement.GetProperty("data").EnumerateArray().Single(r => r.GetProperty("key").GetString() == "priced");
            var expected = priced.GetProperty("promptTokens").GetInt64() + (2 * priced.GetProperty("completionTokens").GetInt64());
            Assert.Equal(expected, priced.GetProperty("cost").GetDecimal());
            Assert.Equal(expected, row.GetProperty("cost").GetDecimal());
            var unpriced = byModel.RootElement.GetProperty("data").EnumerateArray().Single(r => r.GetProperty("key").GetString() == "unpriced");
            Assert.Equal(JsonValueKind.Null, unpriced.GetProperty("cost").ValueKind); // not free: unknown
            // The team's row says its cost is partial: the unpriced model's tokens are in it, but in no cost.
            var unpricedTokens = unpriced.GetProperty("promptTokens").GetInt64() + unpriced.GetProperty("completionTokens").GetInt64();
            Assert.Equal(unpricedTokens, row.GetProperty("unpricedTokens").GetInt64());
            Assert.Equal(0, priced.GetProperty("unpricedTokens").GetInt64());
        }
    }

    [Fact]
    public async Task An_auditor_recomputes_the_bill_offline_from_the_verified_log_and_a_changed_log_gives_none()
    {
        var folder = _root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, folder);
        var data = _root.Combine("data");
        await using var running = await RunningAppliance.StartAsync(
            $"--Models:priced:Path={folder}", $"--Models:unpriced:Path={folder}", "--Appliance:BuiltInEmbeddings=false", $"--Appliance:DataFolder={data}",
            "--Logging:LogLevel:Default=None", "--Pricing:Currency=EUR", "--Pricing:Models:priced:InputPerMillion=1000000", "--Pricing:Models:priced:OutputPerMillion=2000000");
        await running.WaitUntilReadyAsync();
        using (var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"], groups: ["/research"])))
        {
            Assert.Equal(HttpStatusCode.OK, (await Chat(ada, "priced")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await Chat(ada, "unpriced")).StatusCode);
        }

        using var report = JsonDocument.Parse(await running.Http.GetStringAsync("/admin/usage?by=team"));
        var row = Assert.Single(report.RootElement.GetProperty("data").EnumerateArray());
        var expected = string.Join(",", row.GetProperty("day").GetString(), "/research", row.GetProperty("requests").GetInt64(), row.GetProperty("promptTokens").GetInt64(),
            row.GetProperty("completionTokens").GetInt64(), row.GetProperty("cost").GetDecimal().ToString(CultureInfo.InvariantCulture), "EUR", row.GetProperty("unpricedTokens").GetInt64());
        // The same report as CSV from the API, for a finance script with a service account (no console session).
        using (var csv = await running.Http.GetAsync("/audit/usage?by=team&format=csv"))
        {
            Assert.Equal("text/csv", csv.Content.Headers.ContentType?.MediaType);
            Assert.Equal(expected, (await csv.Content.ReadAsStringAsync()).Split('\n')[1]);
        }

        using (var unknown = await running.Http.GetAsync("/admin/usage?format=xlsx"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
            Assert.Contains("\"format\"", await unknown.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        var export = _root.Combine("export.jsonl");
        await File.WriteAllBytesAsync(export, await running.Http.GetByteArrayAsync("/audit/export"));
        var key = _root.Combine("audit.pub.pem");
        await File.WriteAllTextAsync(key, await running.Http.GetStringAsync("/audit/public-key"));
        // The node's prices as a settings file holds them: comments, another case, a figure as a string.
        var settings = _root.Combine("appsettings.json");
        await File.WriteAllTextAsync(settings, """
            {
              // what the node was given
              "Pricing": { "Currency": "EUR", "Models": { "PRICED": { "InputPerMillion": 1000000, "OutputPerMillion": "2000000" } } },
              "Audit": { "Store": "sqlite" }
            }
            """);

        foreach (var source in new[] { new[] { "--file", export, "--public-key", key }, ["--db", Path.Combine(data, "audit", "audit.db"), "--public-key", key] })
        {
            var (exit, output) = await ApplianceCli.RunAsync(["audit", "usage", .. source, "--by", "team", "--prices", settings]);
            Assert.True(exit == 0, output);
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal("day,team,requests,prompt_tokens,completion_tokens,cost,currency,unpriced_tokens", lines[0]);
            Assert.Equal(expected, lines[1]); // the node's own report, recomputed from the verified log
        }

        // The same export twice, joined with cat: its entries would count twice, and the chain does not verify so.
        var joined = _root.Combine("joined.jsonl");
        await File.WriteAllTextAsync(joined, await File.ReadAllTextAsync(export) + await File.ReadAllTextAsync(export));
        var (joinedExit, joinedOutput) = await ApplianceCli.RunAsync("audit", "usage", "--file", joined, "--public-key", key, "--by", "team", "--prices", settings);
        Assert.Equal(1, joinedExit);
        Assert.DoesNotContain("day,team", joinedOutput, StringComparison.Ordinal);

        // An entry changed after the fact (fewer tokens billed): the chain no longer verifies, and no report is given.
        var changed = File.ReadAllLines(export).Select(line =>
            line.Contains("\"kind\":\"request.completed\"", StringComparison.Ordinal) && line.Contains("\"model\":\"priced\"", StringComparison.Ordinal)
                ? System.Text.RegularExpressions.Regex.Replace(line, "\"completionTokens\":[0-9]+", "\"completionTokens\":0")
                : line).ToList();
        Assert.NotEqual(File.ReadAllLines(export), changed);
        await File.WriteAllLinesAsync(export, changed);
        var (brokenExit, brokenOutput) = await ApplianceCli.RunAsync("audit", "usage", "--file", export, "--public-key", key, "--by", "team", "--prices", settings);
        Assert.Equal(1, brokenExit);
        Assert.Contains("BROKEN at entry", brokenOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("day,team", brokenOutput, StringComparison.Ordinal);

        // A rate misspelt in the settings file is named, not read as free.
        await File.WriteAllTextAsync(settings, """{ "Pricing": { "Currency": "EUR", "Models": { "priced": { "InputPerMillion": 1, "OutputPerMilion": 2 } } } }""");
        var (badExit, badOutput) = await ApplianceCli.RunAsync("audit", "usage", "--db", Path.Combine(data, "audit", "audit.db"), "--prices", settings);
        Assert.Equal(2, badExit);
        Assert.Contains("OutputPerMilion", badOutput, StringComparison.Ordinal);

        // Exit code 1 is a broken chain and nothing else: a key that is no PEM is 2.
        var (keyExit, keyOutput) = await ApplianceCli.RunAsync("audit", "usage", "--db", Path.Combine(data, "audit", "audit.db"), "--public-key", settings);
        Assert.True(keyExit == 2, keyOutput);
    }

    [Fact]
    public async Task Without_prices_the_reports_have_no_costs()
    {
        var folder = _root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, folder);
        await using var running = await RunningAppliance.StartAsync($"--Models:tiny:Path={folder}", "--Appliance:BuiltInEmbeddings=false",
            $"--Appliance:DataFolder={_root.Combine("data")}", "--Logging:LogLevel:Default=None");
        await running.WaitUntilReadyAsync();
        Assert.Equal(HttpStatusCode.OK, (await Chat(running.Http, "tiny")).StatusCode);

        using var report = JsonDocument.Parse(await running.Http.GetStringAsync("/admin/usage?by=model"));
        Assert.Equal(JsonValueKind.Null, report.RootElement.GetProperty("currency").ValueKind);
        Assert.Equal(JsonValueKind.Null, report.RootElement.GetProperty("unpricedModels").ValueKind);
        Assert.Equal(JsonValueKind.Null, Assert.Single(report.RootElement.GetProperty("data").EnumerateArray()).GetProperty("cost").ValueKind);
    }

    [Theory]
    [InlineData("Pricing:Models:m:InputPerMillion=1", "Pricing:Currency must say what the rates are in")]
    [InlineData("Pricing:Currency=EUR|Pricing:Models:m:InputPerMillion=1", "Pricing:Models:m:OutputPerMillion must be set (0 when those tokens are free)")]
    [InlineData("Pricing:Currency=EUR|Pricing:Models:m:InputPerMillion=-1|Pricing:Models:m:OutputPerMillion=1", "Pricing:Models:m:InputPerMillion must not be negative")]
    [InlineData("Pricing:Currency=EUR|Pricing:Models:m:InputPerMillion=1|Pricing:Models:m:OutputPerMillion=1|Pricing:Models:m:Earlier:0:InputPerMillion=2|Pricing:Models:m:Earlier:0:OutputPerMillion=2",
        "Pricing:Models:m:Since must say from which day the current rate applies")]
    [InlineData("Pricing:Currency=EUR|Pricing:Models:m:Since=2026-01-01|Pricing:Models:m:InputPerMillion=1|Pricing:Models:m:OutputPerMillion=1|Pricing:Models:m:Earlier:0:Since=2026-02-01|Pricing:Models:m:Earlier:0:InputPerMillion=2|Pricing:Models:m:Earlier:0:OutputPerMillion=2",
        "Pricing:Models:m:Earlier has a rate since 2026-02-01, not before the current rate's Since (2026-01-01)")]
    public void Prices_that_cannot_be_meant_are_named(string settings, string expected)
    {
        var options = Bind(settings);
        Assert.Contains(options.Validate(), problem => problem.StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void A_price_written_as_the_binder_would_misread_it_is_named()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Pricing:Currency"] = "EUR", ["Pricing:Models:m:Since"] = "July", ["Pricing:Models:m:InputPerMillion"] = "0,20", ["Pricing:Models:m:OutputPerMilion"] = "1",
            ["Pricing:Models:m:Earlier:0:Since"] = "01/03/2027", // 3 January to .NET, 1 March to a European reader
        }).Build();
        var failures = new WrittenSettingsValidator(configuration).Validate(null, new WrittenSettings()).Failures!.ToList();
        Assert.Contains("Pricing:Models:m:Since is 'July', which is not a day (yyyy-MM-dd)", failures);
        Assert.Contains("Pricing:Models:m:InputPerMillion is '0,20', which is not a number (with a '.' for decimals)", failures);
        Assert.Contains("Pricing:Models:m:Earlier:0:Since is '01/03/2027', which is not a day (yyyy-MM-dd)", failures);
        Assert.Contains(failures, f => f.StartsWith("Pricing:Models:m:OutputPerMilion is not a setting: did you mean Pricing:Models:m:OutputPerMillion?", StringComparison.Ordinal));
    }

    [Fact]
    public void A_day_takes_the_newest_rate_begun_by_then_and_a_day_before_every_rate_is_unpriced()
    {
        var prices = new PriceList(Bind(
            "Pricing:Currency=credits|Pricing:Models:m:Since=2026-03-01|Pricing:Models:m:InputPerMillion=3|Pricing:Models:m:OutputPerMillion=30"
            + "|Pricing:Models:m:Earlier:0:Since=2026-02-01|Pricing:Models:m:Earlier:0:InputPerMillion=2|Pricing:Models:m:Earlier:0:OutputPerMillion=20"));
        UsageRow Day(string day) => new(day, "ada", "m", 1, 1_000_000, 100_000);

        var usage = prices.Price([Day("2026-01-31"), Day("2026-02-01"), Day("2026-02-28"), Day("2026-03-01"), new("2026-03-01", "ada", "other", 1, 5, 5)]);

        Assert.Equal([null, 4m, 4m, 6m], usage.Rows.Select(r => r.Cost));
        Assert.Equal([1_100_000L, 0, 0, 10], usage.Rows.Select(r => r.UnpricedTokens));
        Assert.Equal(2, usage.Rows[^1].Requests); // the unpriced model's request is in the day's row, its tokens in no cost
        Assert.Equal(["m", "other"], usage.UnpricedModels); // m on 2026-01-31, before its first rate
        Assert.Equal("credits", prices.Currency);
    }

    public void Dispose() => _root.Dispose();

    private static PricingOptions Bind(string settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings.Split('|').Select(s => s.Split('=', 2)).ToDictionary(p => p[0], p => (string?)p[1]))
            .Build().GetSection(PricingOptions.Section).Get<PricingOptions>()!;

    private static Task<HttpResponseMessage> Chat(HttpClient client, string model) =>
        client.PostAsync("/v1/chat/completions", new StringContent(
            $$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi"}],"max_tokens":3,"ignore_eos":true}""", Encoding.UTF8, "application/json"));
}
