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
    [InlineData("meta-llama/Llama-3.1-8B-Instruct", "meta-llama%2FLlama-3.1-8B-Instruct")]
    [InlineData("llama3:8b", "llama3%3A8b")]
    [InlineData("top secret", "top%20secret")]
    [InlineData("../etc/passwd", "%2E.%2Fetc%2Fpasswd")]
    [InlineData(".hidden", "%2Ehidden")]
    [InlineData("modèle", "mod%C3%A8le")]
    public void Any_model_id_or_label_seals_with_a_key_file_inside_the_folder(string scope, string name)
    {
        using var folder = new TempFolder("vault");
        var vault = new ContentVault(folder.Path);

        var sealedText = vault.Seal(scope, "hello");

        Assert.StartsWith($"v1:{name}:", sealedText, StringComparison.Ordinal);
        Assert.Equal([Path.Combine(folder.Path, name + ".key")], Directory.GetFiles(folder.Path));
        Assert.Equal("hello", new ContentVault(folder.Path).Open(sealedText));
        Assert.True(vault.Destroy(scope));
        Assert.Null(vault.Open(sealedText));
    }

    [Fact]
    public void Scopes_that_differ_only_in_characters_a_file_name_cannot_hold_get_different_keys()
    {
        using var folder = new TempFolder("vault");
        var vault = new ContentVault(folder.Path);
        var slash = vault.Seal("org/model", "a");
        var colon = vault.Seal("org:model", "b");
        var plain = vault.Seal("org%2Fmodel", "c"); // '%' itself is encoded: no scope can pose as another's name

        Assert.Equal(3, Directory.GetFiles(folder.Path).Length);
        Assert.Equal(["a", "b", "c"], new[] { slash, colon, plain }.Select(vault.Open));
    }

    [Theory]
    [InlineData("v1:../../etc/passwd:AAAA")]
    [InlineData("v1:.hidden:AAAA")]
    public void A_sealed_text_naming_a_file_outside_the_folder_is_not_read(string sealedText) =>
        Assert.Throws<FormatException>(() => new ContentVault(Path.GetTempPath()).Open(sealedText));

    [Fact]
    public void An_empty_scope_is_refused() =>
        Assert.Throws<ArgumentException>(() => new ContentVault(Path.GetTempPath()).Seal(string.Empty, "x"));
}
