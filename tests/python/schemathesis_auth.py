"""Schemathesis hooks for tests/tests/openapi.rs: real tokens for every case.

Each generated request gets a fresh login of the test's admin user, so that
protected routes are reached (not only their 401) and a generated logout,
logout-all or forced logout cannot starve the cases after it. The refresh
token goes to /auth/reissue (a 200 to check against the document), the
access token everywhere else. A case that already carries an Authorization
header (schemathesis testing the bearer scheme itself) keeps it.

Configured by the environment: REISSUE_OPENAPI_BASE (the app's base URL),
REISSUE_OPENAPI_EMAIL, REISSUE_OPENAPI_PASSWORD.
"""

import os

import requests
import schemathesis

BASE = os.environ["REISSUE_OPENAPI_BASE"]
CREDENTIALS = {
    "email": os.environ["REISSUE_OPENAPI_EMAIL"],
    "password": os.environ["REISSUE_OPENAPI_PASSWORD"],
}


# No caching (a session may have ended since), and no retry on 401: a 401 is
# an answer the document must describe, not a cue to log in again.
@schemathesis.auth(refresh_interval=None, retry_on=[])
class FreshLogin:
    def get(self, case, context):
        response = requests.post(f"{BASE}/auth/login", json=CREDENTIALS, timeout=20)
        response.raise_for_status()
        return response.json()

    def set(self, case, data, context):
        headers = case.headers or {}
        if any(name.lower() == "authorization" for name in headers):
            return
        token = data["refresh_token"] if case.path.endswith("/reissue") else data["access_token"]
        headers["Authorization"] = f"Bearer {token}"
        case.headers = headers
