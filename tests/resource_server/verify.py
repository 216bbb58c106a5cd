"""README "Resource servers": verifying a Tessera access token in Python
with PyJWT. Run by tests/it/resources.rs against a live server:
    python3 verify.py ISSUER AUDIENCE TOKEN
prints the claims as JSON and exits 0 when the token is valid for
AUDIENCE, else prints the reason on stderr and exits 1."""
# README: resource-server-python (begin)
import json
import sys

import jwt  # PyJWT[crypto]

issuer, audience, token = sys.argv[1:4]
# Caches the keys; fetches again when a token names an unknown kid.
jwks = jwt.PyJWKClient(f"{issuer}/jwks", cache_keys=True)

try:
    # RFC 9068: an access token, not an ID token.
    if jwt.get_unverified_header(token).get("typ", "").lower() != "at+jwt":
        raise jwt.InvalidTokenError("not an access token (typ)")
    key = jwks.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key,
        algorithms=["RS256", "ES256"],
        issuer=issuer,
        audience=audience,  # this API's resource identifier; `aud` may be a list
        options={"require": ["exp", "iss", "aud", "sub"]},
    )
    print(json.dumps(claims))
except jwt.PyJWTError as e:
    print(f"invalid token: {e}", file=sys.stderr)
    sys.exit(1)
# README: resource-server-python (end)
