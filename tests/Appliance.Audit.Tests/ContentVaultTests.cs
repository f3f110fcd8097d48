using System.Security.Cryptography;
using Appliance.Audit.Content;
using Appliance.Tests.Common;

namespace Appliance.Audit.Tests;

public sealed class ContentVaultTests
{
    [Fact]
    public void Sealed_content_opens_with_its_scope_key_and_never_again_once_the_key_is_destroyed()
    {
        using var folder = new TempFolder("vault");
        var vault = new ContentVault(folder.Path);
        var sealedText = vault.Seal("llama-3", "{\"prompt\":\"le plan secret 🤫\"}");

        Assert.DoesNotContain("secret", sealedText, StringComparison.Ordinal);
        Assert.StartsWith("v1:llama-3:", sealedText, StringComparison.Ordinal);
        Assert.Equal("{\"prompt\":\"le plan secret 🤫\"}", new ContentVault(folder.Path).Open(sealedText));

        Assert.True(vault.Destroy("llama-3"));
        Assert.Null(vault.Open(sealedText));
        Assert.False(vault.Destroy("llama-3"));
    }

    [Fact]
    public void Altered_ciphertext_or_a_moved_scope_is_detected()
    {
        using var folder = new TempFolder("vault");
        var vault = new ContentVault(folder.Path);
        var sealedText = vault.Seal("a", "hello");
        vault.Seal("b", "other");
        var blob = Convert.FromBase64String(sealedText.Split(':')[2]);
        blob[^20] ^= 1;
        Assert.ThrowsAny<CryptographicException>(() => vault.Open($"v1:a:{Convert.ToBase64String(blob)}"));
        Assert.ThrowsAny<CryptographicException>(() => vault.Open(sealedText.Replace("v1:a:", "v1:b:", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("../etc/passwd")]
    [InlineData("")]
    [InlineData(".hidden")]
    public void A_scope_that_is_not_a_plain_name_is_refused(string scope) =>
        Assert.Throws<ArgumentException>(() => new ContentVault(Path.GetTempPath()).Seal(scope, "x"));
}
