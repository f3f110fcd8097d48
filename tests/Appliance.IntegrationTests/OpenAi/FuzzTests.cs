using System.Text;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>Thousands of mutated bodies: never a 5xx, and the server still answers afterwards.</summary>
[Collection(ApplianceServerCollection.Name)]
public sealed class FuzzTests(ApplianceServer server)
{
    private static readonly string[] Seeds =
    [
        """{"model":"tiny","messages":[{"role":"user","content":"Hi"}],"max_tokens":2,"temperature":0.5,"stop":["x"],"n":1}""",
        """{"model":"tiny","messages":[{"role":"system","content":[{"type":"text","text":"a"}]},{"role":"user","content":"b"}],"max_tokens":1,"stream":true}""",
        """{"model":"tiny","prompt":["a",[1,2,3]],"max_tokens":1,"logprobs":2}""",
    ];

    private static readonly string[] Fragments = ["null", "-1", "1e999", "\"\"", "[]", "{}", "true", "\"\\u0000\"", "99999999999999999999", ",", "}", "\"", "\\", "\uD800"];

    [Fact]
    public async Task Mutated_bodies_never_get_a_server_error()
    {
        var random = new Random(20261128);
        var serverErrors = new List<string>();
        for (var i = 0; i < 2000; i++)
        {
            var seed = Seeds[i % Seeds.Length];
            var body = Mutate(seed, random);
            var path = seed.Contains("\"prompt\"", StringComparison.Ordinal) ? "/v1/completions" : "/v1/chat/completions";
            using var content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            using var response = await server.Http.PostAsync(path, content);
            if ((int)response.StatusCode >= 500)
            {
                serverErrors.Add($"{(int)response.StatusCode} for {body}");
            }
        }

        Assert.Empty(serverErrors);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await server.Http.GetAsync("/health/ready")).StatusCode);
    }

    private static string Mutate(string seed, Random random)
    {
        var text = new StringBuilder(seed);
        for (var m = random.Next(1, 4); m > 0; m--)
        {
            var at = random.Next(text.Length);
            switch (random.Next(4))
            {
                case 0:
                    text.Remove(at, Math.Min(random.Next(1, 6), text.Length - at));
                    break;
                case 1:
                    text.Insert(at, Fragments[random.Next(Fragments.Length)]);
                    break;
                case 2:
                    text[at] = (char)random.Next(32, 127);
                    break;
                default:
                    var length = Math.Min(random.Next(1, 10), text.Length - at);
                    text.Insert(random.Next(text.Length), text.ToString(at, length));
                    break;
            }
        }

        return text.ToString();
    }
}
