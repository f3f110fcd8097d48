using System.ClientModel;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using OpenAI;
using OpenAI.Chat;

namespace Appliance.IntegrationTests.Guardrails;

/// <summary>
/// Guardrails on the real appliance, through the official OpenAI SDK and each API dialect: what a rule refuses, masks
/// or cuts, told in the dialect's own words, recorded in the audit log (never the matched text) and counted.
/// </summary>
public sealed class GuardrailApiTests(GuardedAppliance server) : IClassFixture<GuardedAppliance>
{
    private const string Card = "4111 1111 1111 1111";
    private static readonly ChatCompletionOptions Greedy = new() { MaxOutputTokenCount = 40, Temperature = 0 };

    private ChatClient Client(string model) =>
        new(model, new ApiKeyCredential(server.Running.Token!), new OpenAIClientOptions { Endpoint = new Uri(server.Running.Http.BaseAddress!, "/v1") });

    private static ChatMessage[] Asking(string question) => [new SystemChatMessage("You are terse."), new UserChatMessage(question)];

    private async Task<string> StreamedAsync(string model, string question, Action<ChatFinishReason?>? finished = null)
    {
        var text = new StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var update in Client(model).CompleteChatStreamingAsync(Asking(question), Greedy))
        {
            text.Append(string.Concat(update.ContentUpdate.Select(part => part.Text)));
            finish ??= update.FinishReason;
        }

        finished?.Invoke(finish);
        return text.ToString();
    }

    private async Task<List<JsonElement>> AuditEventsAsync(string kind)
    {
        using var events = JsonDocument.Parse(await server.Running.Http.GetStringAsync($"/audit/events?kind={kind}&limit=1000"));
        return [.. events.RootElement.GetProperty("data").EnumerateArray().Select(e => e.Clone())];
    }

    private static string? Detail(JsonElement record) => record.TryGetProperty("detail", out var detail) ? detail.GetString() : null;

    [Fact]
    public async Task A_prompt_holding_a_card_number_is_refused_with_content_filter_and_audited_without_the_number()
    {
        var refused = await Assert.ThrowsAsync<ClientResultException>(() => Client("guarded").CompleteChatAsync(Asking($"Charge {Card} now."), Greedy));

        Assert.Equal(400, refused.Status);
        using var error = JsonDocument.Parse(refused.GetRawResponse()!.Content.ToString());
        var body = error.RootElement.GetProperty("error");
        Assert.Equal(("content_filter", "messages[1]", "invalid_request_error"), (body.GetProperty("code").GetString(), body.GetProperty("param").GetString(), body.GetProperty("type").GetString()));
        Assert.Contains("'cards'", body.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain("4111", body.GetProperty("message").GetString(), StringComparison.Ordinal);

        // The rule is the guarded model's: the same prompt to another model is answered.
        ChatCompletion open = await Client("open").CompleteChatAsync(Asking($"Charge {Card} now."), Greedy);
        Assert.Equal(ChatFinishReason.Length, open.FinishReason);

        var refusals = await AuditEventsAsync("request.refused");
        var record = Assert.Single(refusals, r => Detail(r) == "guardrails: input blocked cards" && r.GetProperty("endpoint").GetString() == "/v1/chat/completions");
        Assert.Equal(("guarded", "content_filter", 400), (record.GetProperty("model").GetString(), record.GetProperty("errorCode").GetString(), record.GetProperty("status").GetInt32()));
        Assert.DoesNotContain("4111", string.Join('\n', refusals.Select(r => r.GetRawText())), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_member_of_an_exempt_group_passes_the_rule_that_exempts_it_and_no_other()
    {
        using var fraud = server.Running.ClientWith(server.Running.MintToken("fraud-analyst", ["appliance-user"], groups: ["fraud"]));

        using var card = await fraud.PostAsJsonAsync("/v1/chat/completions",
            new { model = "guarded", messages = new[] { new { role = "user", content = $"Is {Card} stolen?" } }, max_tokens = 2 });
        Assert.Equal(HttpStatusCode.OK, card.StatusCode);

        using var echoed = await fraud.PostAsJsonAsync("/v1/completions", new { model = "guarded", prompt = "Ask ada@example.org", max_tokens = 1, echo = true });
        var completion = await echoed.Content.ReadFromJsonAsync<JsonElement>();
        Assert.StartsWith("Ask [EMAIL]", completion.GetProperty("choices")[0].GetProperty("text").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_email_is_masked_before_the_model_reads_it_in_prompts_and_embedding_inputs()
    {
        using var echoed = await server.Running.Http.PostAsJsonAsync("/v1/completions",
            new { model = "guarded", prompt = "Write to ada@example.org today", max_tokens = 1, echo = true, temperature = 0 });
        Assert.Equal(HttpStatusCode.OK, echoed.StatusCode);
        var completion = await echoed.Content.ReadFromJsonAsync<JsonElement>();
        Assert.StartsWith("Write to [EMAIL] today", completion.GetProperty("choices")[0].GetProperty("text").GetString(), StringComparison.Ordinal);

        using var embedded = await server.Running.Http.PostAsJsonAsync("/v1/embeddings",
            new { model = GuardedAppliance.Embedder, input = new[] { "mail ada@example.org", "mail [EMAIL]" } });
        Assert.Equal(HttpStatusCode.OK, embedded.StatusCode);
        var vectors = (await embedded.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("data").EnumerateArray()
            .Select(d => d.GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToList();
        Assert.Equal(vectors[1], vectors[0]);

        var completed = await AuditEventsAsync("request.completed");
        Assert.Contains(completed, r => r.GetProperty("model").GetString() == GuardedAppliance.Embedder && Detail(r) == "guardrails: input masked emails");
    }

    [Fact]
    public async Task A_rerank_query_and_documents_are_screened_as_an_embedding_models_inputs()
    {
        async Task<List<double>> ScoresAsync(string query, string[] documents)
        {
            using var response = await server.Running.Http.PostAsJsonAsync("/v1/rerank", new { model = GuardedAppliance.Embedder, query, documents });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var answer = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.DoesNotContain("ada@example.org", answer.GetRawText(), StringComparison.Ordinal); // returned documents are the masked ones
            return [.. answer.GetProperty("results").EnumerateArray().OrderBy(r => r.GetProperty("index").GetInt32()).Select(r => r.GetProperty("relevance_score").GetDouble())];
        }

        var masked = await ScoresAsync("who is ada@example.org", ["write to ada@example.org", "the weather"]);
        var typed = await ScoresAsync("who is [EMAIL]", ["write to [EMAIL]", "the weather"]);

        Assert.Equal(typed, masked);
        var completed = await AuditEventsAsync("request.completed");
        Assert.Contains(completed, r => r.GetProperty("endpoint").GetString() == "/v1/rerank" && Detail(r) == "guardrails: input masked emails x2");
    }

    [Fact]
    public async Task An_answer_is_masked_whole_and_as_it_streams()
    {
        ChatCompletion open = await Client("open").CompleteChatAsync(Asking("Say something."), Greedy);
        var expected = Regex.Replace(open.Content[0].Text, "[aeiouAEIOU]", "_");
        Assert.NotEqual(open.Content[0].Text, expected); // the answer has vowels to mask

        ChatCompletion masked = await Client("masked").CompleteChatAsync(Asking("Say something."), Greedy);
        Assert.Equal((expected, ChatFinishReason.Length, 40), (masked.Content[0].Text, masked.FinishReason, masked.Usage.OutputTokenCount));
        Assert.Equal(expected, await StreamedAsync("masked", "Say something."));
    }

    [Fact]
    public async Task An_answer_ends_before_a_blocked_match_with_finish_reason_content_filter()
    {
        ChatCompletion open = await Client("open").CompleteChatAsync(Asking("Say more."), Greedy);
        var cut = open.Content[0].Text.IndexOf('e', StringComparison.Ordinal);
        Assert.True(cut >= 0, $"the reference answer has no letter e to block: {open.Content[0].Text}");
        var expected = open.Content[0].Text[..cut];

        ChatCompletion guarded = await Client("guarded").CompleteChatAsync(Asking("Say more."), Greedy);
        Assert.Equal((expected, ChatFinishReason.ContentFilter), (guarded.Content.Count == 0 ? string.Empty : guarded.Content[0].Text, guarded.FinishReason));
        ChatFinishReason? streamedFinish = null;
        Assert.Equal(expected, await StreamedAsync("guarded", "Say more.", f => streamedFinish = f));
        Assert.Equal(ChatFinishReason.ContentFilter, streamedFinish);

        var completed = await AuditEventsAsync("request.completed");
        Assert.Contains(completed, r => r.GetProperty("model").GetString() == "guarded" && r.GetProperty("finishReason").GetString() == "content_filter"
            && Detail(r) == "guardrails: output blocked letter-e");
        var metrics = await server.Running.Http.GetStringAsync("/metrics");
        Assert.True(Sample(metrics, "appliance_guardrail_interventions_total", "action=\"block\",direction=\"output\",rule=\"letter-e\"") >= 2);
    }

    [Fact]
    public async Task Responses_and_Messages_tell_the_cut_in_their_own_words()
    {
        using var response = await server.Running.Http.PostAsJsonAsync("/v1/responses",
            new { model = "guarded", input = "Say more.", instructions = "You are terse.", max_output_tokens = 40, temperature = 0 });
        var result = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(("incomplete", "content_filter"), (result.GetProperty("status").GetString(), result.GetProperty("incomplete_details").GetProperty("reason").GetString()));

        using var message = await server.Running.Http.PostAsJsonAsync("/v1/messages",
            new { model = "guarded", system = "You are terse.", max_tokens = 40, temperature = 0, messages = new[] { new { role = "user", content = "Say more." } } });
        var answer = await message.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("refusal", answer.GetProperty("stop_reason").GetString());

        // A prompt the rules refuse is refused in Anthropic's error shape.
        using var refused = await server.Running.Http.PostAsJsonAsync("/v1/messages",
            new { model = "guarded", max_tokens = 8, messages = new[] { new { role = "user", content = $"Card {Card}." } } });
        var error = await refused.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal((HttpStatusCode.BadRequest, "error", "invalid_request_error"), (refused.StatusCode, error.GetProperty("type").GetString(), error.GetProperty("error").GetProperty("type").GetString()));
        Assert.Contains("'cards'", error.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Responses_echo_their_instructions_as_masked_and_count_them_once()
    {
        using var response = await server.Running.Http.PostAsJsonAsync("/v1/responses",
            new { model = "guarded", input = "Say more.", instructions = "Write to ada@example.org.", max_output_tokens = 4, temperature = 0 });
        var result = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("Write to [EMAIL].", result.GetProperty("instructions").GetString());

        var completed = await AuditEventsAsync("request.completed");
        var detail = Detail(Assert.Single(completed, r => r.GetProperty("endpoint").GetString() == "/v1/responses" && Detail(r)?.Contains("emails", StringComparison.Ordinal) == true));
        Assert.StartsWith("guardrails: input masked emails", detail, StringComparison.Ordinal);
        Assert.DoesNotContain("emails x", detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_token_id_prompt_outside_the_vocabulary_is_still_a_400_where_prompts_are_screened()
    {
        using var refused = await server.Running.Http.PostAsJsonAsync("/v1/completions", new { model = "guarded", prompt = new[] { 15, 999_999 }, max_tokens = 1 });

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("outside the vocabulary", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_batch_line_a_rule_refuses_goes_to_the_error_file_and_a_cut_answer_to_the_output()
    {
        var id = await BatchRequests.CreateAsync(server.Running.Http, "/v1/chat/completions",
        [
            new { model = "guarded", messages = new[] { new { role = "user", content = $"Refund {Card}." } }, max_tokens = 8 },
            new { model = "guarded", messages = new[] { new { role = "user", content = "Say more." } }, max_tokens = 40, temperature = 0 },
        ]);

        var batch = await BatchRequests.EndAsync(server.Running.Http, id);
        Assert.Equal(("completed", 1, 1), (batch.GetProperty("status").GetString(), BatchRequests.Count(batch, "completed"), BatchRequests.Count(batch, "failed")));
        var error = Assert.Single(await BatchRequests.LinesAsync(server.Running.Http, batch.GetProperty("error_file_id").GetString()!));
        Assert.Equal(("r0", 400, "content_filter"), (error.GetProperty("custom_id").GetString(), error.GetProperty("response").GetProperty("status_code").GetInt32(),
            error.GetProperty("response").GetProperty("body").GetProperty("error").GetProperty("code").GetString()));
        var answer = Assert.Single(await BatchRequests.LinesAsync(server.Running.Http, batch.GetProperty("output_file_id").GetString()!));
        Assert.Equal("content_filter", answer.GetProperty("response").GetProperty("body").GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task Log_probabilities_are_refused_where_answers_are_screened()
    {
        var refused = await Assert.ThrowsAsync<ClientResultException>(() =>
            Client("masked").CompleteChatAsync(Asking("Say something."), new ChatCompletionOptions { MaxOutputTokenCount = 4, IncludeLogProbabilities = true }));

        Assert.Equal(400, refused.Status);
        Assert.Contains("\"unsupported_parameter\"", refused.GetRawResponse()!.Content.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Administrators_see_the_rules_each_model_gets_and_their_fingerprint()
    {
        using var user = server.Running.ClientWith(server.Running.MintToken("ada", ["appliance-user"]));
        Assert.Equal(HttpStatusCode.Forbidden, (await user.GetAsync("/admin/guardrails")).StatusCode);

        var view = await server.Running.Http.GetFromJsonAsync<JsonElement>("/admin/guardrails");
        Assert.Matches("^sha256:[0-9a-f]{64}$", view.GetProperty("fingerprint").GetString());
        var rules = view.GetProperty("rules").EnumerateArray().ToList();
        Assert.Equal(["cards", "emails", "letter-e", "vowels"], rules.Select(r => r.GetProperty("name").GetString()));
        Assert.Equal(("mask", "input", "[EMAIL]"), (rules[1].GetProperty("action").GetString(), rules[1].GetProperty("applies").GetString(), rules[1].GetProperty("mask").GetString()));
        Assert.Equal("1 character", rules[3].GetProperty("heldBack").GetString());

        var models = view.GetProperty("models");
        static List<string?> Names(JsonElement list) => [.. list.EnumerateArray().Select(n => n.GetString())];
        Assert.Equal(["cards", "emails"], Names(models.GetProperty("guarded").GetProperty("input")));
        Assert.Equal(["letter-e"], Names(models.GetProperty("guarded").GetProperty("output")));
        Assert.Empty(Names(models.GetProperty("open").GetProperty("input")));
        Assert.Empty(Names(models.GetProperty("open").GetProperty("output")));
        Assert.Equal(["emails"], Names(models.GetProperty(GuardedAppliance.Embedder).GetProperty("input")));
        Assert.Equal(["vowels"], Names(models.GetProperty("masked").GetProperty("output"))); // its rule names its alias
        var unknown = Assert.Single(view.GetProperty("unknownModels").EnumerateArray());
        Assert.Equal(("letter-e", "ghost"), (unknown.GetProperty("rule").GetString(), unknown.GetProperty("model").GetString()));
    }

    private static double Sample(string exposition, string metric, string labels)
    {
        var line = exposition.Split('\n').FirstOrDefault(l => l.StartsWith(metric + "{", StringComparison.Ordinal) && l.Contains(labels, StringComparison.Ordinal));
        Assert.True(line is not null, $"no sample of {metric} with {labels}");
        return double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
    }
}
