using Appliance.Tests.Common;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Appliance.Identity.Tests;

public sealed class DevelopmentIdentityTests
{
    [Fact]
    public async Task A_minted_token_is_Keycloak_shaped_and_validates_against_the_stored_key()
    {
        using var folder = new TempFolder("dev-identity");
        var identity = DevelopmentIdentity.LoadOrCreate(folder.Path);
        var token = identity.Mint(new DevelopmentTokenRequest("ada", ["appliance-user"], "appliance-api", TimeSpan.FromMinutes(5), Clearance: "restricted"), DateTimeOffset.UtcNow);

        var reloaded = DevelopmentIdentity.LoadOrCreate(folder.Path); // the same key, as the host and the CLI share it
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = DevelopmentIdentity.Issuer,
            ValidAudience = "appliance-api",
            IssuerSigningKey = reloaded.SigningKey,
        });

        Assert.True(result.IsValid, result.Exception?.Message);
        var claims = result.ClaimsIdentity.Claims.ToList();
        Assert.Equal("ada", claims.Single(c => c.Type == "preferred_username").Value);
        Assert.Equal("restricted", claims.Single(c => c.Type == "clearance").Value);
        Assert.Equal(["appliance-user"], KeycloakRoles.Read(claims, "appliance-api"));
        Assert.Equal(reloaded.SigningKey.Kid, new JsonWebToken(token).Kid);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void The_key_file_is_readable_by_its_owner_only()
    {
        using var folder = new TempFolder("dev-identity");
        var identity = DevelopmentIdentity.LoadOrCreate(folder.Path);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(identity.KeyPath));
    }
}
