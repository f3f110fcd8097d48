using Appliance.Identity.ApiKeys;
using Appliance.Tests.Common;

namespace Appliance.Identity.Tests;

public sealed class ApiKeyStoreTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("")]
    [InlineData("eyJhbGciOiJSUzI1NiJ9.e30.sig")]
    [InlineData("apk_")]
    [InlineData("apk_short_secret")]
    [InlineData("apk_0123456789abcdef_")]
    public void Malformed_keys_are_not_parsed(string text) => Assert.Null(ApiKeySecret.Parse(text));

    [Fact]
    public void A_key_authenticates_until_it_expires_or_is_revoked_and_the_store_reloads_what_it_saved()
    {
        using var folder = new TempFolder("api-key-store");
        var store = new ApiKeyStore(folder.Path);
        var (id, key, hash) = ApiKeySecret.Generate();
        store.Add(new ApiKeyRecord
        {
            Id = id, Name = "job", Owner = "ada", Roles = ["appliance-user"], CreatedAt = Now, CreatedBy = "admin",
            ExpiresAt = Now.AddDays(1), SecretHash = hash,
        });

        Assert.Equal("ada", store.Authenticate(key, Now).Record?.Owner);
        Assert.Equal($"expired API key {id} of ada", store.Authenticate(key, Now.AddDays(2)).Refusal);
        Assert.Equal("unknown API key", store.Authenticate(key[..^1] + (key[^1] == 'A' ? 'B' : 'A'), Now).Refusal);

        Assert.True(store.Revoke(id, "admin", Now.AddHours(1)));
        Assert.False(store.Revoke("ffffffffffffffff", "admin", Now));
        var reloaded = new ApiKeyStore(folder.Path);
        Assert.Equal($"revoked API key {id} of ada", reloaded.Authenticate(key, Now.AddHours(2)).Refusal);
        Assert.Equal(Now.AddHours(1), reloaded.Find(id)!.RevokedAt);
    }
}
