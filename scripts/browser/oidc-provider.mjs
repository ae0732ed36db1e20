// A real OpenID provider for the "Sign in with Entra ID" browser test: the npm package
// `oidc-provider` (pinned in package.json) with its development sign-in pages, which accept any
// name. Its ID tokens carry what reportroot reads from Entra's: `preferred_username`, `email`
// and `tid` (every account is in tenant $TENANT). Started and stopped by check.sh.
//
//   PORT=… REDIRECT_URI=… CLIENT_ID=… CLIENT_SECRET=… TENANT=… node scripts/browser/oidc-provider.mjs
import Provider from 'oidc-provider';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const port = Number(env('PORT'));
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: env('CLIENT_ID'),
    client_secret: env('CLIENT_SECRET'),
    redirect_uris: [env('REDIRECT_URI')],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  claims: { openid: ['sub', 'tid'], profile: ['name', 'preferred_username'], email: ['email'] },
  // Entra puts the profile claims in the ID token itself, not only behind userinfo.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  cookies: { keys: ['reportroot-browser-test'] },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, tid: env('TENANT'), name: id, preferred_username: id, email: id };
      },
    };
  },
});
provider.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening at ${issuer}`));
