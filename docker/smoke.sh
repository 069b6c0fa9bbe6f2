#!/usr/bin/env bash
# Smoke test of the Docker image, as a connector team's CI would use it: build the image, run it
# (read-only root filesystem, data in a volume), wait for the container's own health status, drive
# a connector's life with curl (connection, schema to completed, items, an external group, a search
# as two users with different results), run the image's `gcemu conformance` against it, stop it with
# SIGTERM, start it again and check the data in the volume survived; then run it with TLS and strict
# auth (health over https, the CA, a token from its token endpoint, HTTP/2). Everything it creates
# is removed at the end.
#
# The container shares the host's network and listens on 127.0.0.1 only, so no traffic leaves
# the loopback interface. Starts dockerd itself when no engine answers.
set -euo pipefail
cd "$(dirname "$0")/.."

tag="gcemu:smoke-$$"
name="gcemu-smoke-$$"
volume="gcemu-smoke-$$"
port="${GCEMU_SMOKE_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
base="http://127.0.0.1:$port"

fail() {
    echo "smoke: FAILED: $*" >&2
    docker logs "$name" 2>&1 | tail -20 >&2 || true
    exit 1
}

cleanup() {
    docker rm -f "$name" "$name-mem" "$name-tls" >/dev/null 2>&1 || true
    docker volume rm -f "$volume" >/dev/null 2>&1 || true
    docker image rm -f "$tag" >/dev/null 2>&1 || true
}
trap cleanup EXIT

if ! docker info >/dev/null 2>&1; then
    echo "smoke: starting dockerd"
    (dockerd >/tmp/gcemu-smoke-dockerd.log 2>&1 &)
    for _ in $(seq 1 100); do
        docker info >/dev/null 2>&1 && break
        sleep 0.2
    done
    docker info >/dev/null 2>&1 || fail "no Docker engine (see /tmp/gcemu-smoke-dockerd.log)"
fi

now_ms() { date +%s%3N; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {'d': d}))" "$1"; }

# --- build -------------------------------------------------------------------------------------
docker/build.sh "$tag"
size=$(docker image inspect -f '{{.Size}}' "$tag")
[ "$size" -lt 32000000 ] || fail "the image is $size bytes, over 32 MB (it is one static binary)"
[ "$(docker image inspect -f '{{.Config.User}}' "$tag")" = "65532:65532" ] || fail "the image does not run as a non-root user"
for label in version source description; do
    value=$(docker image inspect -f "{{index .Config.Labels \"org.opencontainers.image.$label\"}}" "$tag")
    [ -n "$value" ] || fail "the OCI label $label is missing"
done

# --- run and wait for the container's health status ----------------------------------------------
run() {
    docker run -d --name "$name" --network host --read-only -v "$volume:/data" \
        -e "GCEMU_LISTEN=127.0.0.1:$port" -e "GCEMU_HEALTHCHECK_URL=$base" "$tag" >/dev/null
}
wait_healthy() {
    local started=$1
    for _ in $(seq 1 300); do
        case "$(docker inspect -f '{{.State.Health.Status}}' "$name")" in
            healthy) echo $(( $(now_ms) - started )); return 0 ;;
            unhealthy) fail "the container reports unhealthy" ;;
        esac
        sleep 0.02
    done
    fail "the container was not healthy within 6 s"
}
started=$(now_ms)
run
healthy_ms=$(wait_healthy "$started")
[ "$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$name")" = "true" ] || fail "the root filesystem is writable"

# --- a connector's life -------------------------------------------------------------------------
call() { # method path [body] -> prints "status body"
    local method=$1 path=$2 body=${3:-} token=${TOKEN:-}
    local args=(-sS -o /tmp/gcemu-smoke-body -w '%{http_code}' -X "$method" "$base$path")
    [ -n "$body" ] && args+=(-H 'content-type: application/json' --data "$body")
    [ -n "$token" ] && args+=(-H "authorization: Bearer $token")
    local status
    status=$(curl "${args[@]}")
    echo "$status $(cat /tmp/gcemu-smoke-body)"
}
expect() { # status method path [body]
    local want=$1; shift
    local answer
    answer=$(call "$@")
    [ "${answer%% *}" = "$want" ] || fail "$1 $2 answered ${answer:0:300} (expected $want)"
    echo "${answer#* }"
}

expect 201 POST /v1.0/users '{"id":"adele-id","userPrincipalName":"adele@contoso.com","displayName":"Adele","accountEnabled":true}' >/dev/null
expect 201 POST /v1.0/users '{"id":"bob-id","userPrincipalName":"bob@contoso.com","displayName":"Bob","accountEnabled":true}' >/dev/null
expect 201 POST /v1.0/external/connections '{"id":"smoketickets","name":"Smoke tickets","description":"docker smoke test"}' >/dev/null
curl -sS -D /tmp/gcemu-smoke-headers -o /dev/null -X PATCH "$base/v1.0/external/connections/smoketickets/schema" \
    -H 'content-type: application/json' \
    --data '{"baseType":"microsoft.graph.externalItem","properties":[{"name":"title","type":"String","isSearchable":true,"isRetrievable":true,"labels":["title"]},{"name":"priority","type":"Int64","isQueryable":true,"isRetrievable":true,"isRefinable":true}]}'
grep -q '^HTTP/1.1 202' /tmp/gcemu-smoke-headers || fail "the schema PATCH was not accepted: $(head -1 /tmp/gcemu-smoke-headers)"
location=$(grep -i '^location:' /tmp/gcemu-smoke-headers | tr -d '\r' | cut -d' ' -f2)
operation_path=${location#"$base"}
for _ in $(seq 1 50); do
    status=$(expect 200 GET "$operation_path" | json 'd["status"]')
    [ "$status" = "completed" ] && break
    sleep 0.1
done
[ "$status" = "completed" ] || fail "the schema operation ended $status"

expect 201 POST /v1.0/external/connections/smoketickets/groups '{"id":"helpdesk","displayName":"Helpdesk"}' >/dev/null
expect 201 POST /v1.0/external/connections/smoketickets/groups/helpdesk/members '{"id":"adele-id","type":"user"}' >/dev/null
expect 200 PUT /v1.0/external/connections/smoketickets/items/public '{"acl":[{"type":"everyone","value":"everyone","accessType":"grant"}],"properties":{"title":"Printer manual","priority":1},"content":{"type":"text","value":"printer paper"}}' >/dev/null
expect 200 PUT /v1.0/external/connections/smoketickets/items/helpdeskonly '{"acl":[{"type":"externalGroup","value":"helpdesk","accessType":"grant"}],"properties":{"title":"Printer escalation","priority":2}}' >/dev/null

search_total() { # user -> total of a "printer" search as that user
    local token
    token=$(expect 200 POST /_emulator/token "{\"user\":\"$1\"}" | json 'd["access_token"]')
    TOKEN=$token expect 200 POST /v1.0/search/query \
        '{"requests":[{"entityTypes":["externalItem"],"contentSources":["/external/connections/smoketickets"],"query":{"queryString":"printer"}}]}' \
        | json 'd["value"][0]["hitsContainers"][0]["total"]'
}
[ "$(search_total adele@contoso.com)" = "2" ] || fail "adele should see both items"
[ "$(search_total bob@contoso.com)" = "1" ] || fail "bob should see only the public item"

# --- the conformance scenarios (built into the image's binary) against the container --------------
# docker exec runs the image's own gcemu; the container shares the host's network, so the target is
# the same loopback address.
docker exec "$name" /gcemu conformance --target "$base" >/tmp/gcemu-smoke-conformance.txt 2>&1 || {
    tail -80 /tmp/gcemu-smoke-conformance.txt >&2
    fail "gcemu conformance failed against the container"
}
grep -q '^PASSED: ' /tmp/gcemu-smoke-conformance.txt || fail "gcemu conformance printed no PASSED summary"
conformance=$(grep '^PASSED: ' /tmp/gcemu-smoke-conformance.txt)

# --- SIGTERM stops it cleanly, the volume keeps the data ----------------------------------------
stop_started=$(now_ms)
docker stop -t 10 "$name" >/dev/null
stop_ms=$(( $(now_ms) - stop_started ))
[ "$(docker inspect -f '{{.State.ExitCode}}' "$name")" = "0" ] || fail "gcemu exited $(docker inspect -f '{{.State.ExitCode}}' "$name") on SIGTERM"
[ "$stop_ms" -lt 2000 ] || fail "stopping took $stop_ms ms"
restarted=$(now_ms)
docker start "$name" >/dev/null
wait_healthy "$restarted" >/dev/null
title=$(expect 200 GET /v1.0/external/connections/smoketickets/items/helpdeskonly | json 'd["properties"]["title"]')
[ "$title" = "Printer escalation" ] || fail "the item did not survive the restart"
[ "$(search_total adele@contoso.com)" = "2" ] || fail "the index did not survive the restart"
expect 202 DELETE /v1.0/external/connections/smoketickets >/dev/null

# --- --in-memory by environment -----------------------------------------------------------------
docker rm -f "$name" >/dev/null
docker run -d --name "$name-mem" --network host --read-only -e GCEMU_IN_MEMORY=1 \
    -e "GCEMU_LISTEN=127.0.0.1:$port" -e "GCEMU_HEALTHCHECK_URL=$base" "$tag" >/dev/null
# The ready line names where state lives; the log driver may show it a moment after gcemu wrote it.
in_memory=no
for _ in $(seq 1 200); do
    if curl -fsS "$base/_emulator/health" >/dev/null 2>&1 &&
        docker logs "$name-mem" 2>&1 | grep -q 'ready on .*(in-memory)'; then
        in_memory=yes
        break
    fi
    sleep 0.05
done
[ "$in_memory" = yes ] || fail "GCEMU_IN_MEMORY=1 did not keep state in memory: $(docker logs "$name-mem" 2>&1 | grep 'ready on')"

# --- https and strict auth by environment ---------------------------------------------------------
docker rm -f "$name-mem" >/dev/null
docker run -d --name "$name-tls" --network host --read-only -e GCEMU_IN_MEMORY=1 -e GCEMU_TLS=1 \
    -e GCEMU_AUTH=strict -e "GCEMU_LISTEN=127.0.0.1:$port" -e "GCEMU_HEALTHCHECK_URL=$base" "$tag" >/dev/null
name="$name-tls"
tls_started=$(now_ms)
wait_healthy "$tls_started" >/dev/null
secure="https://127.0.0.1:$port"
curl -fsS -k "$secure/_emulator/ca.pem" -o /tmp/gcemu-smoke-ca.pem || fail "no CA at $secure/_emulator/ca.pem"
tenant=6f1e3b7a-0c4d-4e2a-9b1f-2d3c4e5f6a7b
access_token=$(curl -fsS --cacert /tmp/gcemu-smoke-ca.pem "$secure/$tenant/oauth2/v2.0/token" \
    --data-urlencode client_id=00000000-0000-0000-0000-0000000000a1 --data-urlencode client_secret=gcemu-default-secret \
    --data-urlencode grant_type=client_credentials --data-urlencode scope=https://graph.microsoft.com/.default |
    json 'd["access_token"]') || fail "the token endpoint gave no token over https"
version=$(curl -sS --http2 --cacert /tmp/gcemu-smoke-ca.pem -o /dev/null -w '%{http_version} %{http_code}' \
    -H "authorization: Bearer $access_token" "$secure/v1.0/external/connections")
[ "$version" = "2 200" ] || fail "strict mode over HTTP/2 with a token from the token endpoint answered '$version'"
anonymous=$(curl -sS --cacert /tmp/gcemu-smoke-ca.pem -o /dev/null -w '%{http_code}' "$secure/v1.0/external/connections")
[ "$anonymous" = "401" ] || fail "strict mode answered $anonymous to a request without a token"

echo "smoke: passed (image $(awk -v s="$size" 'BEGIN{printf "%.1f MB", s/1000000}'), healthy $healthy_ms ms after docker run, SIGTERM stop $stop_ms ms; conformance ${conformance#PASSED: })"
