"""Logs in to Arca's JWT auth method with Debian's python3-hvac, as a CI job
would: client.auth.jwt.jwt_login(role, jwt). Exits non-zero with a message
on the first failure.

Then, when OIDC_REDIRECT is set, it plays a browser through the OIDC flow
at auth/oidc/ with hvac's auth.oidc helpers: auth_url, a provider that
approves at once and redirects, and the callback.

Environment: VAULT_ADDR; JWT_GOOD, a token the role "ci" at auth/jwt/
accepts; JWT_BAD, one whose repository claim the role refuses;
OIDC_REDIRECT, an allowed redirect URI of the role "web" at auth/oidc/."""

import os
import sys
from urllib.parse import parse_qs, urlparse

import hvac
from hvac import exceptions


def check(cond, msg):
    if not cond:
        print("FAIL: " + msg, file=sys.stderr)
        sys.exit(1)


def main():
    addr = os.environ["VAULT_ADDR"]
    c = hvac.Client(url=addr)
    res = c.auth.jwt.jwt_login(role="ci", jwt=os.environ["JWT_GOOD"])
    auth = res["auth"]
    check(auth["client_token"], "no client_token: %r" % res)
    check("ci" in auth["policies"], "policies: %r" % auth["policies"])
    check(auth["metadata"]["role"] == "ci", "metadata: %r" % auth["metadata"])
    check(c.is_authenticated(), "the login token is not accepted")
    check(c.lookup_token()["data"]["display_name"].startswith("jwt-"), "display name")

    anon = hvac.Client(url=addr)
    try:
        anon.auth.jwt.jwt_login(role="ci", jwt=os.environ["JWT_BAD"])
    except exceptions.InvalidRequest as e:
        check("repository" in str(e), "refusal does not name the claim: %s" % e)
    else:
        check(False, "a token from another repository logged in")
    print("jwt_login ok")

    redirect = os.environ.get("OIDC_REDIRECT")
    if redirect:
        oidc_flow(addr, redirect)


def oidc_flow(addr, redirect):
    import requests

    c = hvac.Client(url=addr)
    res = c.auth.oidc.oidc_authorization_url_request(role="web", redirect_uri=redirect)
    auth_url = res["data"]["auth_url"]
    check(auth_url, "empty auth_url: %r" % res)
    r = requests.get(auth_url, allow_redirects=False)
    check(r.status_code == 302, "provider answered %d" % r.status_code)
    back = urlparse(r.headers["Location"])
    q = parse_qs(back.query)
    res = c.auth.oidc.oidc_callback(state=q["state"][0], nonce="", code=q["code"][0])
    auth = res["auth"]
    check(auth["client_token"] and "dev" in auth["policies"], "oidc callback: %r" % res)
    try:
        c.auth.oidc.oidc_callback(state=q["state"][0], nonce="", code=q["code"][0])
    except exceptions.InvalidRequest as e:
        check("state" in str(e), "replayed state refusal: %s" % e)
    else:
        check(False, "a replayed state logged in")
    print("oidc flow ok")


if __name__ == "__main__":
    main()
