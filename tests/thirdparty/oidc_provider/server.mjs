// panva/oidc-provider 8.x (a certified OpenID provider) on loopback, for vidauth's third-party tests.
//
// Everything comes from the environment:
//   OIDC_PORT               port to listen on (127.0.0.1 only); the issuer is http://127.0.0.1:PORT
//   OIDC_REDIRECT_URIS      the client's redirect URIs, separated by spaces or commas (exact match)
//   OIDC_CLIENT_ID          default "vidauth-test"
//   OIDC_CLIENT_SECRET      default "vidauth-test-secret"
//   OIDC_TOKEN_AUTH_METHOD  client_secret_basic (default) or client_secret_post
//   OIDC_ACCESS_TOKEN_TTL   access token lifetime in seconds (default 300)
//   OIDC_REFRESH_TOKEN_TTL  refresh token lifetime in seconds (default 86400)
//
// Log-in and consent are oidc-provider's own devInteractions pages: any login and any password
// are accepted (the login becomes the account id / `sub`).
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const env = process.env;
const port = Number(env.OIDC_PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('OIDC_PORT must be set to a port number');
  process.exit(2);
}
const redirectUris = (env.OIDC_REDIRECT_URIS || '').split(/[\s,]+/).filter(Boolean);
if (redirectUris.length === 0) {
  console.error('OIDC_REDIRECT_URIS must name at least one redirect URI');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const accessTokenTtl = Number(env.OIDC_ACCESS_TOKEN_TTL || 300);
const refreshTokenTtl = Number(env.OIDC_REFRESH_TOKEN_TTL || 86400);

// A fresh signing key per run.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'vidauth-test-rs256', use: 'sig', alg: 'RS256' };

const configuration = {
  clients: [
    {
      client_id: env.OIDC_CLIENT_ID || 'vidauth-test',
      client_secret: env.OIDC_CLIENT_SECRET || 'vidauth-test-secret',
      client_name: 'vidauth test client',
      application_type: 'web',
      redirect_uris: redirectUris,
      response_types: ['code'],
      grant_types: [
        'authorization_code',
        'refresh_token',
        'urn:ietf:params:oauth:grant-type:device_code',
      ],
      token_endpoint_auth_method: env.OIDC_TOKEN_AUTH_METHOD || 'client_secret_basic',
    },
  ],
  jwks: { keys: [signingKey] },
  cookies: {
    keys: [randomBytes(32).toString('base64url')],
    // No `secure` flag: this runs over plain http on loopback. (koa sets Secure only on https.)
    long: { httpOnly: true, sameSite: 'lax', secure: false },
    short: { httpOnly: true, sameSite: 'lax', secure: false },
  },
  scopes: ['openid', 'offline_access', 'email', 'profile'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  async findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          name: sub,
          preferred_username: sub,
          email: `${sub}@example.test`,
          email_verified: true,
        };
      },
    };
  },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },
  },
  // oidc-provider 8.x requires PKCE for every client by default; here it is required only for
  // public clients (token_endpoint_auth_method "none"), so this confidential client may send
  // an S256 code_challenge or leave it out (a code_verifier is still checked if one was used).
  pkce: {
    methods: ['S256'],
    required(_ctx, client) {
      return client.clientAuthMethod === 'none';
    },
  },
  // Refresh tokens for every code/device grant of a client allowed the refresh_token grant,
  // whether or not offline_access was asked for (the default needs offline_access + prompt=consent).
  issueRefreshToken(_ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  // Always rotate; presenting an already-rotated refresh token is rejected (invalid_grant) and
  // oidc-provider then revokes the whole grant (reuse detection).
  rotateRefreshToken: true,
  clientBasedCORS() {
    return true;
  },
  ttl: {
    AccessToken: accessTokenTtl,
    IdToken: 3600,
    RefreshToken: refreshTokenTtl,
    DeviceCode: 600,
    Interaction: 3600,
    Session: 86400,
    Grant: 86400,
    AuthorizationCode: 60,
  },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
