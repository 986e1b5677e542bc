"""Drives an Arca server with Debian's python3-hvac (0.11), the way Python
users of Vault do. Exits non-zero with a message on the first failure.

Environment: VAULT_ADDR, VAULT_TOKEN (root, dev server with KV v2 at
secret/), SEALED_ADDR (an uninitialised server)."""

import base64
import os
import sys
import time

import hvac
from hvac import exceptions


def check(cond, msg):
    if not cond:
        print("FAIL: " + msg, file=sys.stderr)
        sys.exit(1)


def expect(exc_type, fn, msg):
    try:
        fn()
    except exc_type:
        return
    except Exception as e:  # noqa: BLE001
        check(False, "%s: raised %r, want %s" % (msg, e, exc_type.__name__))
    check(False, "%s: no %s raised" % (msg, exc_type.__name__))


def seal_flow(addr):
    c = hvac.Client(url=addr)
    check(not c.sys.is_initialized(), "fresh server reports initialized")
    health = c.sys.read_health_status(method="GET")
    # hvac hands back the raw response for the non-200 (501) status.
    if not isinstance(health, dict):
        check(health.status_code == 501, "health status before init: %d" % health.status_code)
        health = health.json()
    check(health["initialized"] is False, "health before init: %r" % health)
    res = c.sys.initialize(secret_shares=3, secret_threshold=2)
    check(len(res["keys"]) == 3 and res["root_token"], "initialize: %r" % res)
    check(c.sys.is_sealed(), "sealed after init")
    c.sys.submit_unseal_keys(res["keys"][:2])
    check(not c.sys.is_sealed(), "still sealed after two keys")
    c.token = res["root_token"]
    check(c.is_authenticated(), "root token not accepted")
    c.sys.seal()
    check(c.sys.is_sealed(), "not sealed after seal")
    st = c.sys.submit_unseal_key(res["keys_base64"][1])
    check(st["progress"] == 1 and st["sealed"], "progress after one key: %r" % st)
    st = c.sys.submit_unseal_key(reset=True)
    check(st["progress"] == 0, "reset: %r" % st)
    c.sys.submit_unseal_keys(res["keys"][1:3])
    generate_root(addr, res["keys_base64"])


def generate_root(addr, keys):
    """A quorum of unseal keys makes a new root token, OTP-encoded."""
    c = hvac.Client(url=addr)
    st = c.sys.start_root_token_generation()
    otp, nonce = st["otp"], st["nonce"]
    check(st["started"] and len(otp) == st["otp_length"], "start_root_token_generation: %r" % st)
    expect(exceptions.InvalidRequest, lambda: c.sys.generate_root(keys[0], "not-the-nonce"), "generate_root with a wrong nonce")
    for k in keys[:2]:
        st = c.sys.generate_root(k, nonce)
    check(st["complete"] and st["encoded_token"], "generate_root: %r" % st)
    raw = base64.b64decode(st["encoded_token"] + "=" * (-len(st["encoded_token"]) % 4))
    token = bytes(a ^ b for a, b in zip(raw, otp.encode())).decode()
    check(hvac.Client(url=addr, token=token).is_authenticated(), "the generated root token is not accepted")
    c.sys.start_root_token_generation()
    c.sys.cancel_root_generation()
    check(not c.sys.read_root_generation_progress()["started"], "cancel_root_generation")


def kv2(c):
    kv = c.secrets.kv.v2
    r = kv.create_or_update_secret(path="app/db", secret={"user": "app", "password": "p1"})
    check(r["data"]["version"] == 1, "first version: %r" % r)
    kv.create_or_update_secret(path="app/db", secret={"user": "app", "password": "p2"}, cas=1)
    expect(exceptions.InvalidRequest,
           lambda: kv.create_or_update_secret(path="app/db", secret={"password": "stale"}, cas=1),
           "stale cas write")
    r = kv.read_secret_version(path="app/db")
    check(r["data"]["data"]["password"] == "p2" and r["data"]["metadata"]["version"] == 2, "read latest: %r" % r)
    r = kv.read_secret_version(path="app/db", version=1)
    check(r["data"]["data"]["password"] == "p1", "read version 1: %r" % r)
    kv.patch(path="app/db", secret={"port": "5432"})
    r = kv.read_secret_version(path="app/db")
    check(r["data"]["data"] == {"user": "app", "password": "p2", "port": "5432"}, "after patch: %r" % r)
    kv.delete_latest_version_of_secret(path="app/db")
    md = kv.read_secret_metadata(path="app/db")
    check(md["data"]["versions"]["3"]["deletion_time"] != "", "deleted version 3: %r" % md)
    kv.undelete_secret_versions(path="app/db", versions=[3])
    kv.destroy_secret_versions(path="app/db", versions=[1])
    md = kv.read_secret_metadata(path="app/db")
    check(md["data"]["versions"]["1"]["destroyed"] is True, "destroyed: %r" % md)
    check(md["data"]["versions"]["3"]["deletion_time"] == "", "undeleted: %r" % md)
    kv.update_metadata(path="app/db", max_versions=5, cas_required=False)
    # hvac 0.11 predates custom_metadata: set it with the generic write.
    c.write("secret/metadata/app/db", custom_metadata={"owner": "py"})
    md = kv.read_secret_metadata(path="app/db")
    check(md["data"]["max_versions"] == 5 and md["data"]["custom_metadata"] == {"owner": "py"}, "metadata: %r" % md)
    kv.create_or_update_secret(path="app/api", secret={"k": "v"})
    keys = kv.list_secrets(path="app")["data"]["keys"]
    check(keys == ["api", "db"], "list: %r" % keys)
    kv.delete_metadata_and_all_versions(path="app/db")
    expect(exceptions.InvalidPath, lambda: kv.read_secret_version(path="app/db"), "read after metadata delete")


def kv1(c):
    c.sys.enable_secrets_engine(backend_type="kv", path="kv1", options={"version": "1"})
    mounts = c.sys.list_mounted_secrets_engines()
    check("kv1/" in mounts["data"], "kv1 not listed: %r" % mounts)
    kv = c.secrets.kv.v1
    kv.create_or_update_secret(path="team/a", secret={"token": "t"}, mount_point="kv1")
    r = kv.read_secret(path="team/a", mount_point="kv1")
    check(r["data"] == {"token": "t"}, "kv1 read: %r" % r)
    check(kv.list_secrets(path="team", mount_point="kv1")["data"]["keys"] == ["a"], "kv1 list")
    kv.delete_secret(path="team/a", mount_point="kv1")
    expect(exceptions.InvalidPath, lambda: kv.read_secret(path="team/a", mount_point="kv1"), "kv1 read after delete")
    c.sys.tune_mount_configuration(path="kv1", default_lease_ttl="1h")
    tuned = c.sys.read_mount_configuration(path="kv1")
    check(tuned["data"]["default_lease_ttl"] == 3600, "tune: %r" % tuned)
    c.sys.disable_secrets_engine(path="kv1")


def policies_and_tokens(c, addr):
    policy = 'path "secret/data/app/*" { capabilities = ["read"] }'
    c.sys.create_or_update_policy(name="app-read", policy=policy)
    check(c.sys.read_policy(name="app-read")["data"]["rules"] == policy, "read_policy")
    check("app-read" in c.sys.list_policies()["data"]["policies"], "list_policies")
    c.secrets.kv.v2.create_or_update_secret(path="app/cfg", secret={"x": "1"})
    c.secrets.kv.v2.create_or_update_secret(path="other/cfg", secret={"x": "2"})

    tok = c.auth.token.create(policies=["app-read"], ttl="1h")["auth"]
    check(tok["client_token"].startswith("hvs.") and tok["lease_duration"] == 3600, "token create: %r" % tok)
    look = c.auth.token.lookup(tok["client_token"])["data"]
    check("app-read" in look["policies"], "lookup: %r" % look)
    app = hvac.Client(url=addr, token=tok["client_token"])
    r = app.secrets.kv.v2.read_secret_version(path="app/cfg")
    check(r["data"]["data"]["x"] == "1", "allowed read: %r" % r)
    expect(exceptions.Forbidden, lambda: app.secrets.kv.v2.create_or_update_secret(path="app/cfg", secret={"x": "no"}),
           "write on a read-only path")
    expect(exceptions.Forbidden, lambda: app.secrets.kv.v2.read_secret_version(path="other/cfg"), "read outside policy")
    self_look = app.auth.token.lookup_self()["data"]
    check(self_look["accessor"] == tok["accessor"], "lookup_self")
    renewed = app.auth.token.renew_self(increment="30m")["auth"]
    check(renewed["lease_duration"] == 1800, "renew_self: %r" % renewed)
    caps = app.sys.get_capabilities(paths=["secret/data/app/cfg"])
    check(caps["capabilities"] == ["read"], "capabilities-self: %r" % caps)

    # Revoking a parent revokes its child.
    c.sys.create_or_update_policy(name="creator", policy='path "auth/token/create" { capabilities = ["update"] }')
    parent = c.auth.token.create(policies=["creator"])["auth"]["client_token"]
    pc = hvac.Client(url=addr, token=parent)
    child = pc.auth.token.create()["auth"]["client_token"]
    c.auth.token.revoke(parent)
    expect(exceptions.Forbidden, lambda: c.auth.token.lookup(child), "child lookup after parent revoke")

    short = c.auth.token.create(policies=["default"], ttl="1s")["auth"]["client_token"]
    time.sleep(1.5)
    expect(exceptions.Forbidden, lambda: hvac.Client(url=addr, token=short).auth.token.lookup_self(), "expired token")
    c.sys.delete_policy(name="app-read")
    check("app-read" not in c.sys.list_policies()["data"]["policies"], "delete_policy")


def audit(c):
    """Audit devices through hvac's sys.audit calls: enable, list, hash, disable."""
    import json
    import tempfile
    log = os.path.join(tempfile.mkdtemp(), "audit.log")
    c.sys.enable_audit_device(device_type="file", path="hvac-file", options={"file_path": log},
                              description="hvac test")
    listed = c.sys.list_enabled_audit_devices()
    dev = listed["data"]["hvac-file/"]
    check(dev["type"] == "file" and dev["options"]["file_path"] == log and dev["description"] == "hvac test",
          "list_enabled_audit_devices: %r" % listed)
    c.secrets.kv.v2.create_or_update_secret(path="audited", secret={"token": "hvac-audit-marker"})
    c.secrets.kv.v2.read_secret_version(path="audited")
    h = c.sys.calculate_hash(path="hvac-file", input_to_hash="hvac-audit-marker")["data"]["hash"]
    check(h.startswith("hmac-sha256:"), "calculate_hash: %r" % h)
    with open(log) as f:
        text = f.read()
    check("hvac-audit-marker" not in text, "the audit log holds the plaintext")
    reads = [json.loads(l) for l in text.splitlines()]
    reads = [e for e in reads if e["type"] == "response" and e["request"]["path"] == "secret/data/audited"
             and e["request"]["operation"] == "read"]
    check(reads and reads[0]["response"]["data"]["data"]["token"] == h, "read entry: %r" % reads)
    c.sys.disable_audit_device(path="hvac-file")
    check("hvac-file/" not in c.sys.list_enabled_audit_devices()["data"], "disable_audit_device")


def transit(c):
    c.sys.enable_secrets_engine(backend_type="transit", path="transit")
    tr = c.secrets.transit
    b64 = lambda s: base64.b64encode(s.encode()).decode()
    tr.create_key(name="app")
    ct = tr.encrypt_data(name="app", plaintext=b64("hvac secret"))["data"]["ciphertext"]
    check(ct.startswith("vault:v1:"), "ciphertext: %r" % ct)
    pt = tr.decrypt_data(name="app", ciphertext=ct)["data"]["plaintext"]
    check(pt == b64("hvac secret"), "decrypt: %r" % pt)
    tr.rotate_key(name="app")
    check(tr.read_key(name="app")["data"]["latest_version"] == 2, "latest_version after rotate")
    check(tr.decrypt_data(name="app", ciphertext=ct)["data"]["plaintext"] == pt, "old ciphertext after rotate")
    rw = tr.rewrap_data(name="app", ciphertext=ct)["data"]["ciphertext"]
    check(rw.startswith("vault:v2:"), "rewrap: %r" % rw)
    tr.update_key_configuration(name="app", min_decryption_version=2)
    expect(exceptions.InvalidRequest, lambda: tr.decrypt_data(name="app", ciphertext=ct),
           "v1 ciphertext under min_decryption_version=2")
    batch = tr.encrypt_data(name="app", plaintext="", batch_input=[{"plaintext": b64("a")}, {"plaintext": b64("b")}])
    results = batch["data"]["batch_results"]
    check(len(results) == 2 and all(r["ciphertext"].startswith("vault:v2:") for r in results), "batch: %r" % results)
    dk = tr.generate_data_key(name="app", key_type="plaintext", bits=512)["data"]
    check(len(base64.b64decode(dk["plaintext"])) == 64, "data key of 512 bits: %r" % dk)
    for key_type in ("ed25519", "ecdsa-p256", "rsa-2048"):
        tr.create_key(name="sig-" + key_type, key_type=key_type)
        sig = tr.sign_data(name="sig-" + key_type, hash_input=b64("message"))["data"]["signature"]
        ok = tr.verify_signed_data(name="sig-" + key_type, hash_input=b64("message"), signature=sig)["data"]["valid"]
        check(ok is True, "%s signature does not verify" % key_type)
        bad = tr.verify_signed_data(name="sig-" + key_type, hash_input=b64("messagE"), signature=sig)["data"]["valid"]
        check(bad is False, "%s signature verifies another message" % key_type)
    mac = tr.generate_hmac(name="app", hash_input=b64("m"), algorithm="sha2-512")["data"]["hmac"]
    check(mac.startswith("vault:v2:"), "hmac: %r" % mac)
    tr.create_key(name="conv", derived=True, convergent_encryption=True)
    one = tr.encrypt_data(name="conv", plaintext=b64("same"), context=b64("ctx"))["data"]["ciphertext"]
    two = tr.encrypt_data(name="conv", plaintext=b64("same"), context=b64("ctx"))["data"]["ciphertext"]
    check(one == two, "convergent ciphertexts differ")
    # hvac checks key_type itself; the server must refuse it too.
    expect(exceptions.InvalidRequest, lambda: c.adapter.post("/v1/transit/keys/bad", json={"type": "aes512"}),
           "unknown key type")
    check("app" in tr.list_keys()["data"]["keys"], "list_keys")
    rnd = tr.generate_random_bytes(n_bytes=16, output_format="hex")["data"]["random_bytes"]
    check(len(rnd) == 32, "random bytes: %r" % rnd)


def userpass(c, addr):
    """userpass through hvac's auth.userpass: users, login, a wrong password,
    renewal refused once the user's policies change, lockout and unlock."""
    c.sys.enable_auth_method(method_type="userpass")
    accessor = c.sys.list_auth_methods()["data"]["userpass/"]["accessor"]
    c.sys.tune_auth_method(path="userpass", user_lockout_config={"lockout_threshold": "2"})
    c.sys.create_or_update_policy(name="up-read", policy='path "secret/data/up/*" { capabilities = ["read"] }')
    c.secrets.kv.v2.create_or_update_secret(path="up/cfg", secret={"x": "1"})
    c.auth.userpass.create_or_update_user(username="frank", password="s3cret", policies=["up-read"])
    user = c.auth.userpass.read_user(username="frank")["data"]
    check("password" not in user and user["token_policies"] == ["up-read"], "read_user: %r" % user)
    check("frank" in c.auth.userpass.list_user()["data"]["keys"], "list_user")

    app = hvac.Client(url=addr)
    login = app.auth.userpass.login(username="frank", password="s3cret")["auth"]
    check(app.token == login["client_token"], "login did not set the client's token")
    check(sorted(login["policies"]) == ["default", "up-read"], "login policies: %r" % login)
    check(app.secrets.kv.v2.read_secret_version(path="up/cfg")["data"]["data"]["x"] == "1", "read with the login token")
    check(app.auth.token.renew_self()["auth"]["client_token"] == login["client_token"], "renew_self")

    c.auth.userpass.create_or_update_user(username="frank", policies=["up-read", "more"])
    expect(exceptions.InvalidRequest, lambda: app.auth.token.renew_self(), "renew after the user's policies changed")

    anon = hvac.Client(url=addr)
    expect(exceptions.InvalidRequest, lambda: anon.auth.userpass.login(username="frank", password="wrong"), "wrong password")
    expect(exceptions.InvalidRequest, lambda: anon.auth.userpass.login(username="frank", password="wrong"), "wrong password")
    expect(exceptions.Forbidden, lambda: anon.auth.userpass.login(username="frank", password="s3cret"), "locked out")
    locked = c.adapter.get("/v1/sys/locked-users")["data"]
    check(locked["total"] == 1, "sys/locked-users: %r" % locked)
    c.adapter.post("/v1/sys/locked-users/%s/unlock/frank" % accessor)
    anon.auth.userpass.login(username="frank", password="s3cret")
    c.auth.userpass.update_password_on_user(username="frank", password="n3w")
    expect(exceptions.InvalidRequest, lambda: hvac.Client(url=addr).auth.userpass.login(username="frank", password="s3cret"),
           "old password after a change")
    hvac.Client(url=addr).auth.userpass.login(username="frank", password="n3w")
def approle(c, addr):
    """The AppRole method through hvac's auth.approle: a role, its role ID,
    secret IDs (generated and custom), lookups, login, and destroy."""
    c.sys.enable_auth_method("approle")
    c.sys.create_or_update_policy("app-read", 'path "secret/data/app/*" { capabilities = ["read"] }')
    c.auth.approle.create_or_update_approle(
        "web", token_policies=["app-read"], token_ttl="15m", secret_id_num_uses=2, secret_id_ttl="10m")
    role = c.auth.approle.read_role("web")["data"]
    check(role["token_policies"] == ["app-read"] and role["token_ttl"] == 900 and role["secret_id_num_uses"] == 2,
          "approle read_role: %r" % role)
    check("web" in c.auth.approle.list_roles()["data"]["keys"], "approle list_roles")
    role_id = c.auth.approle.read_role_id("web")["data"]["role_id"]
    gen = c.auth.approle.generate_secret_id("web", metadata={"service": "web"}, cidr_list=["127.0.0.0/8"])["data"]
    check(gen["secret_id"] and gen["secret_id_accessor"] and gen["secret_id_num_uses"] == 2, "generate_secret_id: %r" % gen)
    look = c.auth.approle.read_secret_id("web", gen["secret_id"])["data"]
    check(look["metadata"] == {"service": "web"} and look["cidr_list"] == ["127.0.0.0/8"], "read_secret_id: %r" % look)
    by_acc = c.auth.approle.read_secret_id_accessor("web", gen["secret_id_accessor"])["data"]
    check(by_acc["secret_id_accessor"] == gen["secret_id_accessor"], "read_secret_id_accessor: %r" % by_acc)
    accs = c.auth.approle.list_secret_id_accessors("web")["data"]["keys"]
    check(accs == [gen["secret_id_accessor"]], "list_secret_id_accessors: %r" % accs)

    c.secrets.kv.v2.create_or_update_secret(path="app/config", secret={"color": "blue"})
    app = hvac.Client(url=addr)
    res = app.auth.approle.login(role_id, gen["secret_id"])
    check(app.token == res["auth"]["client_token"], "approle login did not set the client's token")
    check(res["auth"]["metadata"]["role_name"] == "web" and res["auth"]["metadata"]["service"] == "web",
          "approle login metadata: %r" % res["auth"]["metadata"])
    got = app.secrets.kv.v2.read_secret_version(path="app/config")["data"]["data"]
    check(got == {"color": "blue"}, "read with the approle token: %r" % got)
    expect(exceptions.Forbidden, lambda: app.secrets.kv.v2.read_secret_version(path="other/x"),
           "approle token read outside its policy")
    expect(exceptions.InvalidRequest, lambda: hvac.Client(url=addr).auth.approle.login(role_id, "wrong"),
           "approle login with a wrong secret ID")

    c.auth.approle.update_role_id("web", "web-role-id")
    check(c.auth.approle.read_role_id("web")["data"]["role_id"] == "web-role-id", "update_role_id")
    c.auth.approle.create_custom_secret_id("web", "custom-secret-for-web")
    hvac.Client(url=addr).auth.approle.login("web-role-id", "custom-secret-for-web")
    c.auth.approle.destroy_secret_id("web", "custom-secret-for-web")
    expect(exceptions.InvalidRequest, lambda: hvac.Client(url=addr).auth.approle.login("web-role-id", "custom-secret-for-web"),
           "approle login with a destroyed secret ID")
    c.auth.approle.destroy_secret_id_accessor("web", gen["secret_id_accessor"])
    expect(exceptions.InvalidRequest, lambda: hvac.Client(url=addr).auth.approle.login("web-role-id", gen["secret_id"]),
           "approle login with a secret ID destroyed by accessor")
    c.auth.approle.delete_role("web")
    expect(exceptions.InvalidPath, lambda: c.auth.approle.read_role("web"), "approle read of a deleted role")
def identity(c, addr):
    """The identity store through hvac's secrets.identity: entity, alias,
    group, lookup, and a templated policy that follows the entity's name."""
    ident = c.secrets.identity
    ent = ident.create_or_update_entity(name="py-alice", policies=["py-tmpl"], metadata={"team": "py"})["data"]
    check(ent["name"] == "py-alice" and ent["id"], "create entity: %r" % ent)
    read = ident.read_entity_by_name(name="py-alice")["data"]
    check(read["id"] == ent["id"] and read["policies"] == ["py-tmpl"] and read["metadata"] == {"team": "py"},
          "read entity by name: %r" % read)
    check(ent["id"] in ident.list_entities()["data"]["keys"], "list entities")
    acc = c.sys.list_auth_methods()["data"]["token/"]["accessor"]
    alias = ident.create_or_update_entity_alias(name="py-alice-login", canonical_id=ent["id"], mount_accessor=acc)["data"]
    check(ident.read_entity_alias(alias_id=alias["id"])["data"]["canonical_id"] == ent["id"], "read alias")
    found = ident.lookup_entity(alias_name="py-alice-login", alias_mount_accessor=acc)["data"]
    check(found["id"] == ent["id"], "lookup by alias: %r" % found)
    grp = ident.create_or_update_group(name="py-group", policies=["default"], member_entity_ids=[ent["id"]])["data"]
    check(ident.read_group(group_id=grp["id"])["data"]["member_entity_ids"] == [ent["id"]], "read group")
    check(ident.read_entity(entity_id=ent["id"])["data"]["direct_group_ids"] == [grp["id"]], "entity's groups")

    c.sys.create_or_update_policy(name="py-tmpl", policy='path "secret/data/{{identity.entity.name}}/*" { capabilities = ["read"] }')
    c.secrets.kv.v2.create_or_update_secret(path="py-alice/x", secret={"v": "mine"})
    c.secrets.kv.v2.create_or_update_secret(path="py-bob/x", secret={"v": "theirs"})
    c.write("auth/token/roles/py-ident", allowed_entity_aliases="py-*")
    tok = c.auth.token.create(role_name="py-ident", policies=["default"], entity_alias="py-alice-login")["auth"]
    check(tok["entity_id"] == ent["id"] and tok["identity_policies"] == ["default", "py-tmpl"], "token with entity_alias: %r" % tok)
    alice = hvac.Client(url=addr, token=tok["client_token"])
    check(alice.secrets.kv.v2.read_secret_version(path="py-alice/x")["data"]["data"]["v"] == "mine", "templated read")
    expect(exceptions.Forbidden, lambda: alice.secrets.kv.v2.read_secret_version(path="py-bob/x"), "read outside the template")
    ident.update_entity(entity_id=ent["id"], name="py-alice", disabled=True)
    expect(exceptions.Forbidden, lambda: alice.secrets.kv.v2.read_secret_version(path="py-alice/x"), "disabled entity")


def main():
    seal_flow(os.environ["SEALED_ADDR"])
    addr = os.environ["VAULT_ADDR"]
    c = hvac.Client(url=addr, token=os.environ["VAULT_TOKEN"])
    check(c.is_authenticated(), "root token not accepted")
    kv2(c)
    kv1(c)
    policies_and_tokens(c, addr)
    audit(c)
    transit(c)
    userpass(c, addr)
    approle(c, addr)
    identity(c, addr)
    print("python3-hvac %s: all checks passed" % getattr(hvac, "__version__", "0.11"))


if __name__ == "__main__":
    main()
