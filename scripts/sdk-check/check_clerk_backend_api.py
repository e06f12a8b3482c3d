"""Clerk's official Python SDK (clerk-backend-api) against clerk-mock, pointed at it with server_url."""
import sys
from clerk_backend_api import Clerk
url = sys.argv[1] + "/v1"
sk = "sk_test_jobtracker_mock_instance_secret_key"
bot = Clerk(bearer_auth="ak_job_applier_mock_machine_secret_key_0001", server_url=url)
api = Clerk(bearer_auth="ak_jobtracker_api_mock_machine_secret_key_0001", server_url=url)
inst = Clerk(bearer_auth=sk, server_url=url)
failures = []
checks = 0
def check(name, fn):
    global checks
    checks += 1
    try:
        print("ok |", name, "|", fn())
    except Exception as e:
        failures.append(name)
        print("FAIL |", name, "|", type(e).__name__, str(e)[:200])
t = {}
check("m2m.create_token", lambda: t.setdefault("c", bot.m2m.create_token(seconds_until_expiration=600)).id)
check("m2m.verify_token", lambda: api.m2m.verify_token(token=t["c"].token).subject)
check("m2m.list_tokens", lambda: inst.m2m.list_tokens(subject=t["c"].subject).total_count)
check("m2m.revoke_token", lambda: bot.m2m.revoke_token(m2m_token_id=t["c"].id, revocation_reason="py").revoked)
check("machines.list", lambda: inst.machines.list().total_count)
check("machines.create", lambda: t.setdefault("m", inst.machines.create(request={"name": "Py.Bot"})).id)
check("machines.get", lambda: inst.machines.get(machine_id=t["m"].id).name)
API_ID = "mch_2JobTrackerApi0000000000000"
check("machines.list (paging, query, order_by)", lambda: [m.name for m in inst.machines.list(limit=1, offset=1, query="Bot", order_by="+name").data])
check("machines.update", lambda: inst.machines.update(machine_id=t["m"].id, name="Py.Bot2", default_token_ttl=600).default_token_ttl)
check("machines.create_scope", lambda: inst.machines.create_scope(machine_id=t["m"].id, to_machine_id=API_ID).to_machine_id)
def repeated_scope():
    try:
        inst.machines.create_scope(machine_id=t["m"].id, to_machine_id=API_ID)
    except Exception as e:
        if getattr(e, "status_code", None) == 409:
            return "409"
        raise
    raise RuntimeError("a repeated scope was accepted")
check("machines.create_scope repeated -> 409", repeated_scope)
check("machines.delete_scope", lambda: inst.machines.delete_scope(machine_id=t["m"].id, other_machine_id=API_ID).DELETED)
check("machines.get_secret_key", lambda: inst.machines.get_secret_key(machine_id=t["m"].id).secret[:3])
check("machines.rotate_secret_key", lambda: inst.machines.rotate_secret_key(machine_id=t["m"].id, previous_token_ttl=60).secret[:3])
check("machines.delete", lambda: inst.machines.delete(machine_id=t["m"].id).DELETED)
check("jwks.get_jwks", lambda: inst.jwks.get_jwks().keys[0].kid if hasattr(inst.jwks.get_jwks(), "keys") else inst.jwks.get_jwks())
check("sessions.create", lambda: t.setdefault("s", inst.sessions.create(request={"user_id": "user_2DemoAliceCandidate00000000"})).id)
check("sessions.create_token", lambda: inst.sessions.create_token(session_id=t["s"].id).jwt[:10])
check("testing_tokens.create", lambda: inst.testing_tokens.create().token.count("-"))
print(f"clerk-backend-api: {checks - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
