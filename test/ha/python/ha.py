"""Drives a two-server Arca HA cluster with hvac: health codes of a
standby, sys/leader, a write through the standby, sys/ha-status, step-down.
ACTIVE_ADDR and STANDBY_ADDR name the servers, VAULT_TOKEN is a root token."""
import os
import sys

import hvac

active_addr, standby_addr = os.environ["ACTIVE_ADDR"], os.environ["STANDBY_ADDR"]
token = os.environ["VAULT_TOKEN"]
active = hvac.Client(url=active_addr, token=token)
standby = hvac.Client(url=standby_addr, token=token)


def check(cond, msg):
    if not cond:
        print("FAIL: " + msg)
        sys.exit(1)


h = standby.sys.read_health_status(method="GET")
code = h.status_code if not isinstance(h, dict) else 200
check(code == 429, "health of a standby: %d" % code)
h = standby.sys.read_health_status(method="GET", standby_ok=True)
if not isinstance(h, dict):
    h = h.json()
check(h["standby"] is True and h["sealed"] is False, "health?standbyok of a standby: %r" % h)

leader = standby.sys.read_leader_status()
check(leader["ha_enabled"] is True and leader["is_self"] is False, "leader on a standby: %r" % leader)
check(leader["leader_address"] == active_addr, "leader_address %r, want %r" % (leader["leader_address"], active_addr))
check(active.sys.read_leader_status()["is_self"] is True, "leader on the active server")

standby.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
standby.secrets.kv.v2.create_or_update_secret(path="app", secret={"v": "through-standby"}, mount_point="secret")
got = active.secrets.kv.v2.read_secret_version(path="app", mount_point="secret")
check(got["data"]["data"]["v"] == "through-standby", "read back on the active server: %r" % got)

nodes = standby.adapter.get("/v1/sys/ha-status")["data"]["nodes"]
check(len(nodes) == 2, "ha-status nodes: %r" % nodes)
check(sum(1 for n in nodes if n["active_node"]) == 1, "one active node in ha-status: %r" % nodes)

resp = active.sys.step_down()
check(resp.status_code == 204, "step-down: %r" % resp)
print("hvac HA checks passed")
