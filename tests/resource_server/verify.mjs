// README "Resource servers": verifying a Tessera access token in Node with
// `jose`. Run by tests/it/resources.rs against a live server:
//   node verify.mjs ISSUER AUDIENCE TOKEN
// prints the claims as JSON and exits 0 when the token is valid for
// AUDIENCE, else prints the reason on stderr and exits 1.
// README: resource-server-node (begin)
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [issuer, audience, token] = process.argv.slice(2);
// Caches the keys; fetches again when a token names an unknown kid.
const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));

try {
  const { payload } = await jwtVerify(token, jwks, {
    issuer,
    audience, // this API's resource identifier; `aud` may be an array
    typ: 'at+jwt', // RFC 9068: an access token, not an ID token
    algorithms: ['RS256', 'ES256'],
  });
  console.log(JSON.stringify(payload));
} catch (e) {
  console.error(`invalid token: ${e.code ?? e.message}`);
  process.exit(1);
}
// README: resource-server-node (end)
