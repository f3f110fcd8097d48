using System.Security.Claims;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Appliance.Identity.Tests;

/// <summary>Keycloak access-token payloads as Keycloak writes them, read into claims the way JwtBearer reads them.</summary>
internal static class RecordedTokens
{
    public static ClaimsIdentity Identity(string payloadFile)
    {
        var payload = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Payloads", payloadFile));
        var header = Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes("""{"alg":"RS256","typ":"JWT","kid":"recorded"}"""));
        var token = new JsonWebToken($"{header}.{Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(payload))}.");
        return new ClaimsIdentity(token.Claims, "Bearer", ApplianceClaims.Username, ApplianceClaims.Role);
    }
}
