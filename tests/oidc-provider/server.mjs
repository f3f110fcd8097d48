// A stand-in for Keycloak in the appliance's tests: oidc-provider (a certified OpenID provider) mounted at
// /realms/<realm> with Keycloak's endpoint paths, issuing Keycloak-shaped JWT access tokens (realm_access,
// resource_access, azp, preferred_username, typ "Bearer"). Reads its configuration (JSON) from the file named by the
// first argument and prints "listening <port>" once it serves. Test-only controls live under /__test.
import http from 'node:http';
import fs from 'node:fs';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const host = config.host ?? '127.0.0.1';
const providers = new Map();
let port = 0;

const keycloakRoutes = {
  authorization: '/protocol/openid-connect/auth',
  token: '/protocol/openid-connect/token',
  jwks: '/protocol/openid-connect/certs',
  userinfo: '/protocol/openid-connect/userinfo',
  device_authorization: '/protocol/openid-connect/auth/device',
  end_session: '/protocol/openid-connect/logout',
  introspection: '/protocol/openid-connect/token/introspect',
  revocation: '/protocol/openid-connect/revoke',
  pushed_authorization_request: '/protocol/openid-connect/ext/par/request',
  code_verification: '/device',
};

function keycloakClaims(realm, subject) {
  const claims = { typ: 'Bearer', sid: subject.sid, preferred_username: subject.username, realm_access: { roles: subject.roles ?? [] } };
  if (subject.clientRoles) claims.resource_access = subject.clientRoles;
  if (subject.groups) claims.groups = subject.groups;
  if (subject.clearance) claims[realm.clearanceClaim ?? 'clearance'] = subject.clearance;
  return claims;
}

function createProvider(realm) {
  const issuer = `http://${host}:${port}/realms/${realm.name}`;
  const clients = realm.clients.map(c => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: c.grant_types,
    redirect_uris: c.redirect_uris ?? [],
    post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
    response_types: c.grant_types.includes('authorization_code') ? ['code'] : [],
    token_endpoint_auth_method: c.client_secret ? 'client_secret_basic' : 'none',
  }));
  const accessTokenTTL = realm.accessTokenTTL ?? 300;
  const provider = new Provider(issuer, {
    clients,
    jwks: realm.jwks,
    pkce: { required: () => true },
    // Interaction pages live under the realm's prefix too, or the browser would leave the realm.
    interactions: { url: (ctx, interaction) => `/realms/${realm.name}/interaction/${interaction.uid}` },
    routes: keycloakRoutes,
    scopes: ['openid', 'profile', 'email'],
    claims: { openid: ['sub'], profile: ['preferred_username', 'name'], email: ['email'] },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      deviceFlow: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // A resource indicator must be an absolute URI; the token's audience is Keycloak's plain client id.
        defaultResource: () => `urn:realm-client:${realm.audience}`,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ audience: realm.audience, scope: 'openid profile email', accessTokenFormat: 'jwt', accessTokenTTL, jwt: { sign: { alg: 'RS256' } } }),
      },
    },
    // A numeric ClientCredentials TTL would override the resource server's; the function keeps them in step.
    ttl: { ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTTL, AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTTL },
    async findAccount(ctx, id) {
      const user = (realm.users ?? []).find(u => u.username === id) ?? { username: id, roles: [] };
      return { accountId: id, async claims() { return { sub: id, preferred_username: user.username, email: user.email }; } };
    },
    async extraTokenClaims(ctx, token) {
      if (token.kind === 'ClientCredentials') {
        const client = realm.clients.find(c => c.client_id === token.clientId) ?? {};
        return { azp: token.clientId, ...keycloakClaims(realm, { ...client, username: `service-account-${token.clientId}`, sid: undefined }) };
      }
      const user = (realm.users ?? []).find(u => u.username === token.accountId) ?? { username: token.accountId };
      return { azp: token.clientId, ...keycloakClaims(realm, { ...user, sid: token.sessionUid }) };
    },
    // As Keycloak does for the standard flow: a refresh token whenever the client may use one (no offline_access needed).
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Keycloak's default ("Revoke Refresh Token" off): a refresh token stays usable until it expires.
    rotateRefreshToken: () => false,
    loadExistingGrant: async ctx => {
      // Consent is implied, as for Keycloak clients without "consent required".
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid profile email');
      grant.addResourceScope(`urn:realm-client:${realm.audience}`, 'openid profile email');
      await grant.save();
      return grant;
    },
  });
  provider.on('server_error', (ctx, error) => console.error(`server_error on ${ctx.path}:`, error));
  return provider;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', chunk => body += chunk);
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

// Keycloak's user names: people as configured, and a service account per confidential client.
function realmUsers(realm) {
  return [...(realm.users ?? []).map(u => u.username), ...realm.clients.filter(c => c.client_secret).map(c => `service-account-${c.client_id}`)];
}

// The claims of a bearer token this realm signed, or null (the admin API takes the realm's own access tokens).
async function verifiedClaims(realm, authorization) {
  const token = authorization?.startsWith('Bearer ') ? authorization.slice(7) : null;
  if (!token) return null;
  const publicKeys = realm.jwks.keys.map(({ d, p, q, dp, dq, qi, ...publicPart }) => publicPart);
  try {
    const { payload } = await jose.jwtVerify(token, jose.createLocalJWKSet({ keys: publicKeys }), { issuer: `http://${host}:${port}/realms/${realm.name}` });
    return payload;
  } catch {
    return null;
  }
}

// The part of Keycloak's admin API the appliance reads: GET /admin/realms/<realm>/users?username=<name>&exact=true,
// for a caller whose token carries realm-management's view-users role (exact=true also finds service accounts).
async function adminUsers(realm, req, res, query) {
  const claims = await verifiedClaims(realm, req.headers.authorization);
  if (!claims) return res.writeHead(401).end();
  if (!(claims.resource_access?.['realm-management']?.roles ?? []).includes('view-users')) return res.writeHead(403).end();
  const username = (query.get('username') ?? '').toLowerCase();
  const exact = query.get('exact') === 'true';
  const found = realmUsers(realm)
    .filter(u => !(realm.deleted ?? []).includes(u))
    .filter(u => exact ? u.toLowerCase() === username : u.toLowerCase().includes(username));
  res.writeHead(200, { 'content-type': 'application/json' })
    .end(JSON.stringify(found.map(u => ({ id: `id-${u}-${realm.generations?.[u] ?? 0}`, username: u.toLowerCase(), enabled: !(realm.disabled ?? []).includes(u) }))));
}

const server = http.createServer(async (req, res) => {
  const admin = req.url.match(/^\/admin\/realms\/([^/?]+)\/users\?(.*)$/);
  const adminRealm = admin && config.realms.find(r => r.name === admin[1]);
  if (adminRealm && req.method === 'GET') {
    await adminUsers(adminRealm, req, res, new URLSearchParams(admin[2]));
    return;
  }

  // Test control: disable, enable (POST {"enabled": bool}) or delete (DELETE) a user, as a Keycloak admin would;
  // POST {"recreated": true} makes a deleted user's name an account again, with a new id.
  const user = req.url.match(/^\/__test\/realms\/([^/]+)\/users\/([^/]+)$/);
  if (user) {
    const realm = config.realms.find(r => r.name === user[1]);
    const name = decodeURIComponent(user[2]);
    realm.disabled = (realm.disabled ?? []).filter(u => u !== name);
    if (req.method === 'DELETE') realm.deleted = [...(realm.deleted ?? []), name];
    else {
      const body = JSON.parse(await readBody(req));
      if (body.enabled === false) realm.disabled.push(name);
      if (body.recreated === true) {
        realm.deleted = (realm.deleted ?? []).filter(u => u !== name);
        realm.generations = { ...realm.generations, [name]: (realm.generations?.[name] ?? 0) + 1 };
      }
    }
    res.writeHead(204).end();
    return;
  }

  // Test control: replace a realm's signing keys (key rotation), as a Keycloak admin would.
  const rotate = req.url.match(/^\/__test\/realms\/([^/]+)\/keys$/);
  if (rotate && req.method === 'POST') {
    const realm = config.realms.find(r => r.name === rotate[1]);
    realm.jwks = JSON.parse(await readBody(req));
    providers.set(realm.name, createProvider(realm));
    res.writeHead(204).end();
    return;
  }

  const match = req.url.match(/^\/realms\/([^/?]+)(\/.*|\?.*)?$/);
  const provider = match && providers.get(match[1]);
  if (!provider) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('no such realm');
    return;
  }

  const prefix = `/realms/${match[1]}`;
  req.originalUrl = req.url;
  req.url = req.url.slice(prefix.length) || '/';
  provider.callback()(req, res);
});

server.listen(config.port ?? 0, host, () => {
  port = server.address().port;
  for (const realm of config.realms) providers.set(realm.name, createProvider(realm));
  console.log(`listening ${port}`);
});
