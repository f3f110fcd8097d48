using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.IdentityModel.Tokens;

namespace Appliance.Tests.Common;

/// <summary>
/// A real OpenID Connect provider process (tests/oidc-provider: the npm package oidc-provider) on a free loopback port,
/// laid out like Keycloak (/realms/&lt;realm&gt;/protocol/openid-connect/...) and issuing Keycloak-shaped tokens. Two
/// realms with their own keys: "appliance" (trusted by the host under test) and "other" (not trusted).
/// </summary>
public sealed class OidcProvider : IAsyncDisposable
{
    public const string Realm = "appliance";
    public const string OtherRealm = "other";
    public const string Audience = "appliance-api";
    public const string ConsoleClient = "appliance-console";
    public const string ConsoleRedirect = "http://127.0.0.1/callback";

    private readonly Process _process;
    private readonly Dictionary<string, JsonWebKey> _keys;
    private readonly TempFolder _folder;

    private OidcProvider(Process process, string host, int port, Dictionary<string, JsonWebKey> keys, TempFolder folder)
    {
        _process = process;
        Host = host;
        Port = port;
        _keys = keys;
        _folder = folder;
        Http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
    }

    public int Port { get; }

    /// <summary>The address it listens on and names in its issuer: loopback unless a test's other hosts must reach it.</summary>
    public string Host { get; }

    public HttpClient Http { get; }

    public string Authority(string realm = Realm) => $"http://{Host}:{Port}/realms/{realm}";

    /// <summary>The realm's current private signing key: tests sign tokens with it that the provider would never issue.</summary>
    public JsonWebKey SigningKey(string realm = Realm) => _keys[realm];

    /// <summary>Service accounts (client id, secret) and what their tokens say, as Keycloak would map them.</summary>
    public static readonly IReadOnlyList<TestClient> Clients =
    [
        new("report-generator", "report-secret", ClientRoles: ["appliance-user"]),
        new("metrics-scraper", "metrics-secret", RealmRoles: ["offline_access"]),
        new("cleared-analyst", "analyst-secret", RealmRoles: ["appliance-user"], Groups: ["/finance"], Clearance: "restricted"),
        new("compliance-bot", "compliance-secret", ClientRoles: ["appliance-auditor"]),
        new("appliance-operator", "operator-secret", RealmRoles: ["appliance-admin"]), // Ansible's, as in the realm export
        new("other-application", "other-secret", RealmRoles: ["appliance-user"]), // the audience reached it, the appliance did not allow it
        new("appliance-directory", "directory-secret", ManagementRoles: ["view-users"]), // reads users through the admin API
    ];

    /// <summary>People who sign in through the console client (authorization code with PKCE).</summary>
    public static readonly IReadOnlyList<TestUser> Users =
    [
        new("ada", RealmRoles: ["appliance-user"], Clearance: "confidential"),
        new("bob", RealmRoles: ["appliance-auditor"]),
        new("carol", RealmRoles: ["appliance-admin"]),
        new("dave", RealmRoles: ["appliance-user", "appliance-team-lead"], Groups: ["/research"]),
    ];

    /// <summary>Starts the provider; <paramref name="consoleOrigins"/> (e.g. http://127.0.0.1:5123) may sign people in to a web console.</summary>
    public static Task<OidcProvider> StartAsync(params string[] consoleOrigins) => StartAsync(accessTokenSeconds: null, consoleOrigins);

    /// <summary>As <see cref="StartAsync(string[])"/>, listening on <paramref name="host"/> (an address containers or namespaces reach).</summary>
    public static Task<OidcProvider> StartOnAsync(string host, params string[] consoleOrigins) => StartAsync(null, host, consoleOrigins);

    /// <summary>As <see cref="StartAsync(string[])"/>, with access tokens that live <paramref name="accessTokenSeconds"/> (default 300).</summary>
    public static Task<OidcProvider> StartAsync(int? accessTokenSeconds, params string[] consoleOrigins) => StartAsync(accessTokenSeconds, "127.0.0.1", consoleOrigins);

    /// <summary>On a loopback port chosen beforehand: a Keycloak that comes up at the address a node was already told.</summary>
    public static Task<OidcProvider> StartOnPortAsync(int port) => StartAsync(null, "127.0.0.1", [], port);

    private static async Task<OidcProvider> StartAsync(int? accessTokenSeconds, string host, string[] consoleOrigins, int port = 0)
    {
        var folder = new TempFolder("oidc-provider");
        var keys = new Dictionary<string, JsonWebKey> { [Realm] = NewKey(), [OtherRealm] = NewKey() };
        var configPath = folder.Combine("config.json");
        File.WriteAllText(configPath, Config(keys, consoleOrigins, accessTokenSeconds, host, port).ToJsonString());

        var start = new ProcessStartInfo("node", [Path.Combine(ServerFolder(), "server.mjs"), configPath])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start node");
        var stderr = new StringBuilder();
        process.ErrorDataReceived += (_, e) => { lock (stderr) { stderr.AppendLine(e.Data); } };
        process.BeginErrorReadLine();
        var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
        if (line is null || !line.StartsWith("listening ", StringComparison.Ordinal))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"the OpenID provider did not start: {line} {stderr}");
        }

        _ = process.StandardOutput.ReadToEndAsync(); // keep draining so the process never blocks on a full pipe
        return new OidcProvider(process, host, int.Parse(line["listening ".Length..], System.Globalization.CultureInfo.InvariantCulture), keys, folder);
    }

    /// <summary>A service account's access token (client credentials grant), as the provider issues it.</summary>
    public async Task<string> ClientCredentialsTokenAsync(string clientId, string realm = Realm)
    {
        var client = Clients.Single(c => c.ClientId == clientId);
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{Authority(realm)}/protocol/openid-connect/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials" }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{client.ClientId}:{client.Secret}")));
        return await AccessTokenAsync(request);
    }

    /// <summary>
    /// A person's access token through the console client: authorization request with PKCE, the provider's login page
    /// (its development interactions accept any password), then the code exchanged with the verifier.
    /// </summary>
    public async Task<string> SignInAsync(string username)
    {
        using var handler = new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = new CookieContainer() };
        using var browser = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
        var verifier = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
        var challenge = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        var location = new Uri($"{Authority()}/protocol/openid-connect/auth?client_id={ConsoleClient}&response_type=code&scope=openid"
            + $"&redirect_uri={Uri.EscapeDataString(ConsoleRedirect)}&code_challenge={challenge}&code_challenge_method=S256&state=test-state");
        using (var login = await browser.GetAsync(location))
        {
            location = new Uri(location, login.Headers.Location ?? throw new InvalidOperationException("no redirect to the login page"));
        }

        using (var form = await browser.PostAsync(location, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["prompt"] = "login", ["login"] = username, ["password"] = "any",
        })))
        {
            location = new Uri(location, form.Headers.Location ?? throw new InvalidOperationException("the login was not accepted"));
        }

        for (var hop = 0; !location.ToString().StartsWith(ConsoleRedirect, StringComparison.Ordinal); hop++)
        {
            using var step = await browser.GetAsync(location);
            if (hop > 5 || step.Headers.Location is null)
            {
                throw new InvalidOperationException($"the sign-in did not reach the redirect URI (stopped at {location}, {step.StatusCode})");
            }

            location = new Uri(location, step.Headers.Location);
        }

        var code = System.Web.HttpUtility.ParseQueryString(location.Query)["code"] ?? throw new InvalidOperationException($"no code in {location}");
        using var exchange = new HttpRequestMessage(HttpMethod.Post, $"{Authority()}/protocol/openid-connect/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "authorization_code", ["code"] = code, ["redirect_uri"] = ConsoleRedirect,
                ["client_id"] = ConsoleClient, ["code_verifier"] = verifier,
            }),
        };
        return await AccessTokenAsync(exchange);
    }

    /// <summary>Disables or enables a user (a person's username or service-account-&lt;client&gt;), as a Keycloak administrator would.</summary>
    public async Task SetUserEnabledAsync(string username, bool enabled, string realm = Realm)
    {
        using var response = await Http.PostAsync($"http://{Host}:{Port}/__test/realms/{realm}/users/{Uri.EscapeDataString(username)}",
            new StringContent(new JsonObject { ["enabled"] = enabled }.ToJsonString(), Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
    }

    /// <summary>Deletes a user from the realm, as a Keycloak administrator would.</summary>
    public async Task DeleteUserAsync(string username, string realm = Realm)
    {
        using var response = await Http.DeleteAsync($"http://{Host}:{Port}/__test/realms/{realm}/users/{Uri.EscapeDataString(username)}");
        response.EnsureSuccessStatusCode();
    }

    /// <summary>Gives a deleted user's name to a new account (with a new id), as a Keycloak administrator would.</summary>
    public async Task RecreateUserAsync(string username, string realm = Realm)
    {
        using var response = await Http.PostAsync($"http://{Host}:{Port}/__test/realms/{realm}/users/{Uri.EscapeDataString(username)}",
            new StringContent(new JsonObject { ["recreated"] = true }.ToJsonString(), Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
    }

    /// <summary>Replaces the realm's signing key, as a Keycloak administrator rotating keys would.</summary>
    public async Task RotateKeyAsync(string realm = Realm)
    {
        var key = NewKey();
        using var response = await Http.PostAsync($"http://{Host}:{Port}/__test/realms/{realm}/keys",
            new StringContent(new JsonObject { ["keys"] = new JsonArray(PrivateJwk(key)) }.ToJsonString(), Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
        _keys[realm] = key;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        _folder.Dispose();
    }

    private async Task<string> AccessTokenAsync(HttpRequestMessage request)
    {
        using var response = await Http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"the provider refused the token request ({(int)response.StatusCode}): {body}");
        }

        using var document = JsonDocument.Parse(body);
        return document.RootElement.GetProperty("access_token").GetString()!;
    }

    private static JsonObject Config(Dictionary<string, JsonWebKey> keys, IReadOnlyList<string> consoleOrigins, int? accessTokenSeconds, string host, int port)
    {
        var realms = new JsonArray();
        foreach (var (name, key) in keys)
        {
            var clients = new JsonArray();
            foreach (var client in Clients)
            {
                clients.Add(new JsonObject
                {
                    ["client_id"] = client.ClientId,
                    ["client_secret"] = client.Secret,
                    ["grant_types"] = new JsonArray("client_credentials"),
                    ["roles"] = new JsonArray([.. (client.RealmRoles ?? []).Select(r => (JsonNode)r)]),
                    ["clientRoles"] = ClientRoles(client),
                    ["groups"] = client.Groups is { Length: > 0 } groups ? new JsonArray([.. groups.Select(g => (JsonNode)g)]) : null,
                    ["clearance"] = client.Clearance,
                });
            }

            clients.Add(new JsonObject
            {
                ["client_id"] = ConsoleClient,
                ["grant_types"] = new JsonArray("authorization_code", "refresh_token"), // Keycloak's standard flow issues refresh tokens
                ["redirect_uris"] = new JsonArray([ConsoleRedirect, .. consoleOrigins.Select(o => (JsonNode)$"{o}/console/signin-oidc")]),
                ["post_logout_redirect_uris"] = new JsonArray([.. consoleOrigins.Select(o => (JsonNode)$"{o}/console/signout-oidc")]),
            });
            var users = new JsonArray([.. Users.Select(u => (JsonNode)new JsonObject
            {
                ["username"] = u.Username,
                ["roles"] = new JsonArray([.. u.RealmRoles.Select(r => (JsonNode)r)]),
                ["clearance"] = u.Clearance,
                ["groups"] = u.Groups is { Length: > 0 } groups ? new JsonArray([.. groups.Select(g => (JsonNode)g)]) : null,
            })]);
            realms.Add(new JsonObject
            {
                ["name"] = name,
                ["audience"] = Audience,
                ["jwks"] = new JsonObject { ["keys"] = new JsonArray(PrivateJwk(key)) },
                ["clients"] = clients,
                ["users"] = users,
                ["accessTokenTTL"] = accessTokenSeconds,
            });
        }

        return new JsonObject { ["realms"] = realms, ["host"] = host, ["port"] = port };
    }

    /// <summary>resource_access as Keycloak fills it: the API's roles, and realm-management's for a client that has some.</summary>
    private static JsonObject ClientRoles(TestClient client)
    {
        var roles = new JsonObject { [Audience] = new JsonObject { ["roles"] = new JsonArray([.. (client.ClientRoles ?? []).Select(r => (JsonNode)r)]) } };
        if (client.ManagementRoles is { Length: > 0 } management)
        {
            roles["realm-management"] = new JsonObject { ["roles"] = new JsonArray([.. management.Select(r => (JsonNode)r)]) };
        }

        return roles;
    }

    private static JsonWebKey NewKey()
    {
        using var rsa = RSA.Create(2048);
        var key = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(rsa.ExportParameters(includePrivateParameters: true)));
        key.Kid = Base64UrlEncoder.Encode(key.ComputeJwkThumbprint()); // RFC 7638, as the recipe warns: never reuse a kid
        return key;
    }

    private static JsonObject PrivateJwk(JsonWebKey key) => new()
    {
        ["kty"] = "RSA", ["kid"] = key.Kid, ["use"] = "sig", ["alg"] = "RS256",
        ["n"] = key.N, ["e"] = key.E, ["d"] = key.D, ["p"] = key.P, ["q"] = key.Q, ["dp"] = key.DP, ["dq"] = key.DQ, ["qi"] = key.QI,
    };

    private static string ServerFolder()
    {
        var folder = Path.Combine(RepositoryPaths.Root, "tests", "oidc-provider");
        return Directory.Exists(Path.Combine(folder, "node_modules", "oidc-provider"))
            ? folder
            : throw new DirectoryNotFoundException($"{folder}/node_modules is missing: run 'npm ci' there (.ci/run does)");
    }
}

/// <summary>A service account of the test realm.</summary>
public sealed record TestClient(string ClientId, string Secret, string[]? ClientRoles = null, string[]? RealmRoles = null, string[]? Groups = null, string? Clearance = null,
    string[]? ManagementRoles = null);

/// <summary>A person of the test realm.</summary>
public sealed record TestUser(string Username, string[] RealmRoles, string? Clearance = null, string[]? Groups = null);
