"""An outside verifier: PyJWT's PyJWKClient reads a running app's JWKS over
HTTP and verifies an access token with it, as another service would.

    python verify_jwks.py <jwks-url> <issuer> <audience> <token>...

Prints one JSON object: the key ids of the JWKS each checked against its
RFC 7638 thumbprint computed here, and per token either its claims or the
error. Exits non-zero only when the JWKS itself is wrong.
"""

import base64
import hashlib
import json
import sys

import jwt
from jwt import PyJWKClient

# RFC 7638 §3.2: the required members of each key type, in lexicographic order.
REQUIRED = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}


def thumbprint(jwk):
    members = {k: jwk[k] for k in REQUIRED[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def main():
    url, issuer, audience, *tokens = sys.argv[1:]
    client = PyJWKClient(url, cache_keys=False, cache_jwk_set=False)
    keys = client.fetch_data()["keys"]
    bad = [k.get("kid") for k in keys if k.get("kid") != thumbprint(k)]
    out = {"kids": [k.get("kid") for k in keys], "bad_kids": bad, "tokens": []}
    for token in tokens:
        try:
            # PyJWT does not look at `typ`; a resource server must (RFC 9068
            # §4), or a refresh token, signed by the same key, would pass.
            typ = str(jwt.get_unverified_header(token).get("typ", "")).lower()
            if typ not in ("at+jwt", "application/at+jwt"):
                raise ValueError(f"typ {typ!r} is not an access token's")
            key = client.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["EdDSA", "ES256", "RS256"],
                audience=audience,
                issuer=issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
            out["tokens"].append({"ok": True, "alg": key.algorithm_name, "claims": claims})
        except Exception as e:  # noqa: BLE001 - the error is the result
            out["tokens"].append({"ok": False, "error": f"{type(e).__name__}: {e}"})
    print(json.dumps(out))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
