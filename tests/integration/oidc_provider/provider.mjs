// An independent OpenID provider for Federator's interoperability tests:
// npm's certified `oidc-provider`, on a loopback port, with one static test
// client, a few accounts and signing keys generated at start.
//
// Usage: node provider.mjs '<json>' where json is
//   {"client_id", "client_secret", "redirect_uris": [...],
//    "post_logout_redirect_uris": [...], "accounts": {"<login>": {claims...}},
//    "api_clients": [{"client_id", "client_secret", "redirect_uris"}],   (optional)
//    "api": {"resource": "urn:...", "audience": "..."},                    (optional)
//    "tls": {"cert": "<PEM file>", "key": "<PEM file>"}}                   (optional)
// `api` may also shape its access tokens like another provider's (docs/identity.md):
//   "claims": ["acr", "roles"]   the account's claims copied into them (the default),
//   "token": {"header": {"typ": "JWT"}, "add": {"tid": "..."}, "drop": ["client_id"],
//             "azp": true}      header fields over at+jwt, claims added or dropped,
//                               and `azp` set to the client's id.
// "userinfo_omits": ["roles"] leaves those claims out of userinfo answers and puts
// every claim in ID tokens instead (as Entra ID does with app roles).
// Prints one line {"issuer": "http://127.0.0.1:<port>"} once it listens (https
// when `tls` is given: the certificate chain and key it serves).
//
// The broker's client gets opaque access tokens (for userinfo) and refresh tokens;
// an api client asking for `resource` gets RFC 9068 JWT access tokens (typ at+jwt)
// naming the api's audience. An account's `acr` claim is the level its sign-in
// reports. `PUT /_test/accounts/<login>` with a JSON body replaces an account's
// claims (`null` deletes it): an administrator changing roles at the provider.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';

import Provider from 'oidc-provider';

const config = JSON.parse(process.argv[2]);

function signingKey() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid: `test-${randomBytes(4).toString('hex')}`, alg: 'ES256', use: 'sig' };
}

const accounts = { ...config.accounts };
const omitted = config.userinfo_omits || [];
const api = config.api || {};

function account(id) {
  return accounts[id] ? { sub: id, ...accounts[id] } : undefined;
}

const tls = config.tls;
const server = tls
  ? createHttpsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) })
  : createHttpServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`;
  const acrs = [...new Set(Object.values(accounts).map((a) => a && a.acr).filter(Boolean))];
  const provider = new Provider(issuer, {
    clients: [{
      client_id: config.client_id,
      client_secret: config.client_secret,
      redirect_uris: config.redirect_uris,
      post_logout_redirect_uris: config.post_logout_redirect_uris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    }, ...(config.api_clients || []).map((c) => ({
      ...c,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    }))],
    jwks: { keys: [signingKey()] },
    conformIdTokenClaims: omitted.length === 0,
    cookies: { keys: [randomBytes(32).toString('hex')] },
    pkce: { required: () => true },
    acrValues: acrs.length ? acrs : ['urn:test:none'],
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    claims: {
      acr: null,
      openid: ['sub', 'acr'],
      profile: ['name', 'job_title', 'organisation', 'authority'],
      email: ['email'],
      roles: ['roles'],
    },
    features: {
      devInteractions: { enabled: true },
      resourceIndicators: {
        enabled: Boolean(api.resource),
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'lookups',
          audience: api.audience,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
    async extraTokenClaims(ctx, token) {
      // RFC 9068 2.2.1: the access token carries the sign-in's acr, and the roles
      const claims = account(token.accountId);
      if (!claims) return undefined;
      return Object.fromEntries((api.claims || ['acr', 'roles']).map((c) => [c, claims[c]]));
    },
    formats: {
      customizers: {
        async jwt(ctx, token, jwt) {
          const shape = api.token;
          if (!shape) return;
          if (shape.header) jwt.header = { ...shape.header };
          if (shape.azp) jwt.payload.azp = jwt.payload.client_id;
          for (const name of shape.drop || []) delete jwt.payload[name];
          Object.assign(jwt.payload, shape.add || {});
        },
      },
    },
    async findAccount(ctx, id) {
      if (!account(id)) return undefined;
      return {
        accountId: id,
        async claims(use) {
          const claims = { ...account(id) };
          if (use === 'userinfo') for (const c of omitted) delete claims[c];
          return claims;
        },
      };
    },
  });
  const callback = provider.callback();
  server.on('request', (req, res) => {
    const found = /^\/_test\/accounts\/([^/?]+)$/.exec(req.url);
    const submitted = /^\/interaction\/[^/?]+$/.test(req.url) && req.method === 'POST';
    if (!submitted && (!found || req.method !== 'PUT')) return callback(req, res);
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', async () => {
      if (submitted) {
        await interact(provider, req, res, new URLSearchParams(body));
        return;
      }
      const claims = JSON.parse(body);
      if (claims === null) delete accounts[found[1]];
      else accounts[found[1]] = claims;
      res.writeHead(204).end();
    });
    return undefined;
  });
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

// The development login and consent forms' answers, as the dev interactions would
// handle them, except that a login reports the account's `acr` (the dev
// interactions report none, so no ID token would carry one).
async function interact(provider, req, res, form) {
  const details = await provider.interactionDetails(req, res);
  if (form.get('prompt') === 'login') {
    const login = form.get('login');
    await provider.interactionFinished(req, res, {
      login: { accountId: login, acr: accounts[login] ? accounts[login].acr : undefined },
    }, { mergeWithLastSubmission: false });
    return;
  }
  const { prompt: { details: missing }, params, session, grantId } = details;
  const grant = grantId ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } },
    { mergeWithLastSubmission: true });
}

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
