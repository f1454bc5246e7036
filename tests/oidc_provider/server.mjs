// A real OpenID Connect provider (panva's certified oidc-provider) on 127.0.0.1 for faceshot's admin
// sign-in tests (issue 31). Started by tests/oidc_provider/provider.py:
//
//   node tests/oidc_provider/server.mjs --port P --client-id ID --client-secret S --redirect-uri URI [--redirect-uri URI2]
//
// --port 0 picks a free port. Prints one line `ready http://127.0.0.1:P` on stdout once it listens; the issuer is
// that URL. Users live in memory (ann, bob, eve; password = name + "-password"). A test-control API under /__test/
// changes a user's groups and makes the next token response carry a defective ID token. Test use only.

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
  },
  strict: true,
});
for (const required of ['client-id', 'client-secret', 'redirect-uri']) {
  if (!args[required] || args[required].length === 0) {
    console.error(`server.mjs: --${required} is required`);
    process.exit(2);
  }
}

// ---- users, in memory -------------------------------------------------------------------------------------------

const USERS = new Map(
  [
    ['ann', { name: 'Ann Admin', groups: ['faceshot-admins'] }],
    ['bob', { name: 'Bob Viewer', groups: ['warehouse-viewers'] }],
    ['eve', { name: 'Eve Nobody', groups: [] }],
  ].map(([login, user]) => [login, { ...user, login, password: `${login}-password`, email: `${login}@example.test` }]),
);

async function findAccount(_ctx, sub) {
  const user = USERS.get(sub);
  if (!user) return undefined;
  return {
    accountId: sub,
    // oidc-provider keeps only what the granted scopes (and the claims parameter) allow
    async claims() {
      return {
        sub,
        name: user.name,
        preferred_username: user.login,
        email: user.email,
        email_verified: true,
        groups: [...user.groups],
      };
    },
  };
}

// ---- keys -------------------------------------------------------------------------------------------------------

const KID = `test-${randomBytes(6).toString('hex')}`;
const { privateKey: SIGNING_KEY } = await jose.generateKeyPair('RS256', { extractable: true });
const SIGNING_JWK = { ...(await jose.exportJWK(SIGNING_KEY)), kid: KID, alg: 'RS256', use: 'sig' };

// ---- the ID token defects of POST /__test/tamper ------------------------------------------------------------------

const TAMPER_KINDS = ['none', 'expired', 'wrong_key', 'wrong_audience', 'wrong_issuer', 'wrong_nonce'];
let tamperNext = null;

const b64json = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');

async function tamperIdToken(idToken, kind) {
  const header = jose.decodeProtectedHeader(idToken);
  const claims = jose.decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  let key = SIGNING_KEY;
  switch (kind) {
    case 'none':
      // an unsecured JWT: alg "none" and an empty signature
      return `${b64json({ alg: 'none', typ: header.typ || 'JWT' })}.${b64json(claims)}.`;
    case 'expired': {
      const lifetime = (claims.exp ?? now) - (claims.iat ?? now);
      claims.exp = now - 3600;
      claims.iat = claims.exp - Math.max(lifetime, 60);
      break;
    }
    case 'wrong_key':
      // same kid, a different key: the signature must not verify against the provider's JWKS
      ({ privateKey: key } = await jose.generateKeyPair('RS256'));
      break;
    case 'wrong_audience':
      claims.aud = 'someone-else';
      break;
    case 'wrong_issuer':
      claims.iss = 'https://wrong-issuer.example.test';
      break;
    case 'wrong_nonce':
      claims.nonce = 'x';
      break;
    default:
      throw new Error(`unknown tamper kind ${kind}`);
  }
  return new jose.CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader({ ...header, alg: 'RS256', kid: KID })
    .sign(key);
}

// ---- small helpers ----------------------------------------------------------------------------------------------

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function readBody(ctx, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += chunk.length;
    if (size > limit) ctx.throw(413, 'body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readJson(ctx) {
  const text = await readBody(ctx);
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    ctx.throw(400, 'body is not JSON');
  }
  return {};
}

function isLoopback(ctx) {
  const address = ctx.req.socket.remoteAddress || '';
  return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';
}

function loginPage(uid, { login = '', error = '', clientId = '' } = {}) {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Test OIDC provider: sign in</title></head>
<body>
<h1>Sign in</h1>
<p>to <code>${escapeHtml(clientId)}</code> (faceshot's test OpenID Connect provider)</p>
${error ? `<p id="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
  <label>Username <input type="text" name="login" value="${escapeHtml(login)}" required autofocus></label>
  <label>Password <input type="password" name="password" required></label>
  <button type="submit" id="submit">Sign in</button>
</form>
</body>
</html>`;
}

// ---- the provider, on a server that listens before the issuer (its port) is known ------------------------------

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(args.port), '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: args['client-id'],
      client_secret: args['client-secret'],
      redirect_uris: args['redirect-uri'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      // a client registered for client_secret_basic may also use client_secret_post (and the other way round)
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
  ],
  jwks: { keys: [SIGNING_JWK] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  // PKCE (S256, the only method oidc-provider supports) for every client, confidential ones included
  pkce: { required: () => true },
  responseTypes: ['code'],
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  // the default (true) keeps scope-requested claims out of the ID token when userinfo is enabled
  conformIdTokenClaims: false,
  findAccount,
  interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
  },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><html><body><h1>oops</h1>${Object.entries(out)
      .map(([k, v]) => `<pre><strong>${escapeHtml(k)}</strong>: ${escapeHtml(v)}</pre>`)
      .join('')}</body></html>`;
  },
});

// the test-control API
provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith('/__test/')) return next();
  try {
    await testControl(ctx);
  } catch (err) {
    ctx.status = err.status || 500;
    ctx.body = { error: err.expose ? err.message : 'internal error' };
    if (ctx.status >= 500) console.error('test-control error:', err);
  }
  ctx.set('Cache-Control', 'no-store');
  return undefined;
});

async function testControl(ctx) {
  if (!isLoopback(ctx)) ctx.throw(403, 'loopback only');
  ctx.type = 'json';
  if (ctx.method === 'GET' && ctx.path === '/__test/health') {
    ctx.body = { status: 'ok', issuer };
    return undefined;
  }
  const userMatch = /^\/__test\/users\/([^/]+)$/.exec(ctx.path);
  if (ctx.method === 'POST' && userMatch) {
    const user = USERS.get(decodeURIComponent(userMatch[1]));
    if (!user) ctx.throw(404, 'no such user');
    const { groups } = await readJson(ctx);
    if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) {
      ctx.throw(400, 'groups must be an array of strings');
    }
    user.groups = [...groups];
    ctx.body = { login: user.login, groups: user.groups };
    return undefined;
  }
  if (ctx.method === 'POST' && ctx.path === '/__test/tamper') {
    const { id_token: kind } = await readJson(ctx);
    if (kind !== null && !TAMPER_KINDS.includes(kind)) {
      ctx.throw(400, `id_token must be one of ${TAMPER_KINDS.join(', ')} (or null to clear)`);
    }
    tamperNext = kind;
    ctx.body = { id_token: tamperNext };
    return undefined;
  }
  ctx.throw(404, 'unknown test-control route');
  return undefined;
}

// POST /token: the next successful response with an id_token carries the defect asked for, then the mode resets
provider.use(async (ctx, next) => {
  await next();
  if (
    tamperNext
    && ctx.method === 'POST'
    && ctx.path === '/token'
    && ctx.status === 200
    && ctx.body
    && typeof ctx.body.id_token === 'string'
  ) {
    const kind = tamperNext;
    tamperNext = null;
    ctx.body = { ...ctx.body, id_token: await tamperIdToken(ctx.body.id_token, kind) };
  }
});

// the interactions: a plain login form, consent granted without a screen (a first-party client)
provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([^/]+)(\/login)?$/.exec(ctx.path);
  if (!match) return next();
  ctx.set('Cache-Control', 'no-store');
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { uid, prompt, params, session } = details;
  if (uid !== match[1]) ctx.throw(400, 'interaction mismatch');

  const finish = async (result) => {
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(returnTo);
  };

  if (ctx.method === 'GET' && !match[2]) {
    if (prompt.name === 'login') {
      ctx.type = 'html';
      ctx.body = loginPage(uid, { clientId: params.client_id });
      return undefined;
    }
    if (prompt.name === 'consent') {
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      const missing = prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      await finish({ consent: details.grantId ? {} : { grantId } });
      return undefined;
    }
    ctx.throw(400, `unsupported prompt ${prompt.name}`);
  }

  if (ctx.method === 'POST' && match[2]) {
    if (prompt.name !== 'login') ctx.throw(400, 'not a login prompt');
    const form = new URLSearchParams(await readBody(ctx));
    const login = form.get('login') || '';
    const user = USERS.get(login);
    if (!user || form.get('password') !== user.password) {
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = loginPage(uid, { login, error: 'Invalid username or password.', clientId: params.client_id });
      return undefined;
    }
    await finish({ login: { accountId: user.login } });
    return undefined;
  }
  ctx.throw(405, 'method not allowed');
  return undefined;
});

provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error:', err));

server.on('request', provider.callback());

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

console.log(`ready ${issuer}`);
