"""Logs in to Arca's JWT auth method with Debian's python3-hvac, as a CI job
would: client.auth.jwt.jwt_login(role, jwt). Exits non-zero with a message
on the first failure.

Environment: VAULT_ADDR; JWT_GOOD, a token the role "ci" at auth/jwt/
accepts; JWT_BAD, one whose repository claim the role refuses."""

import os
import sys

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


if __name__ == "__main__":
    main()
