#!/usr/bin/env bash
# Run the whole demo: the three services (gateway :8000 -> users :8001 -> db :8002), the
# OpenTelemetry Collector, and a store with a web UI for each signal: Jaeger v2 and
# Zipkin (traces), VictoriaMetrics (metrics), VictoriaLogs (logs).
#
# Usage: deploy/stack.sh up [--infra-only]   start (and wait until every part is healthy)
#        deploy/stack.sh down                stop everything this checkout started
#        deploy/stack.sh status              components, pids, ports, health
#        deploy/stack.sh logs [NAME] [-f]    show (or follow) the logs
#        deploy/stack.sh build               native mode: build the tools (cached per machine)
#
# Mode: STACK=compose|native. Default: compose when `docker info` works, else native.
#   compose: docker compose -f deploy/docker-compose.yml --env-file deploy/.env ...
#   native:  the tools from deploy/native/build.sh plus .venv (made with `make setup`),
#            each in the background with its log and pid file in .run/ (all on 127.0.0.1).
#            The metrics and logs stores keep their data in .run/ until `down`.
# SERVICES=0 is the same as --infra-only: no Python services, only the tracing backends.
# DB=sqlite|postgres: where db keeps its users (default sqlite). postgres runs a PostgreSQL
#   container (compose profile `postgres`), or natively a throwaway cluster on 127.0.0.1:15432
#   (tools/pgcluster.py; its data is removed again by `down`).
# SAMPLING=head|tail (default head): the collector loads deploy/sampling/$SAMPLING.yaml on
#   top of deploy/otel-collector.yaml; tail keeps error, slow and 10 % of the other traces.
# UP_TIMEOUT (seconds, default 120) bounds the wait for each component to become healthy.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
deploy=$repo/deploy
run=$repo/.run
build=$deploy/native/build.sh
envfile=$deploy/.env
compose_args=(-f "$deploy/docker-compose.yml" --env-file "$deploy/.env")
sampling=${SAMPLING:-head}

say() { printf 'stack: %s\n' "$*"; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

envval() { # KEY -> its value in deploy/.env (the ports and versions both paths share)
    local v
    v=$(sed -n "s/^$1=//p" "$envfile" | tail -n 1)
    [ -n "$v" ] || die "$1 is not set in $envfile"
    printf '%s' "$v"
}

# --- native components ---------------------------------------------------------
DB=${DB:-sqlite}
case $DB in sqlite | postgres) ;; *) die "DB must be 'sqlite' or 'postgres' (got '$DB')" ;; esac
# Not 5432, so a PostgreSQL server of the machine's own can keep running beside the demo.
PG_PORT=15432
# The topology (ports and service names) is deploy/.env's, as for compose and the tools.
VM_PORT=$(envval VICTORIAMETRICS_PORT)
VL_PORT=$(envval VICTORIALOGS_PORT)
ZIPKIN_PORT=$(envval ZIPKIN_UI_PORT)
JAEGER_PORT=$(envval JAEGER_UI_PORT)
SPANMETRICS_PORT=$(envval SPANMETRICS_PORT)
OTLP_GRPC_PORT=$(envval OTLP_GRPC_PORT)
OTLP_HTTP_PORT=$(envval OTLP_HTTP_PORT)
GATEWAY_PORT=$(envval GATEWAY_PORT)
USERS_PORT=$(envval USERS_PORT)
DB_PORT=$(envval DB_PORT)
# Zipkin's Logs button on a trace page: VictoriaLogs' UI with the LogsQL query
# trace_id:<id> (the field VictoriaLogs' OTLP ingestion gives a record's trace id).
# deploy/jaeger-ui.json gives Jaeger's UI the same link.
LOGS_URL="http://127.0.0.1:$VL_PORT/select/vmui/#/?query=trace_id:{traceId}&g0.relative_time=last_24_hours&displayFields=service.name,_msg,trace_id,span_id"
# name | ports it listens on (all 127.0.0.1) | health URL
COMPONENTS=(
    "victoriametrics|$VM_PORT|http://127.0.0.1:$VM_PORT/health"
    "victorialogs|$VL_PORT|http://127.0.0.1:$VL_PORT/health"
    "zipkin|$ZIPKIN_PORT|http://127.0.0.1:$ZIPKIN_PORT/health"
    "jaeger|14317 14318 $JAEGER_PORT 16685 14132 14133 14888|http://127.0.0.1:14133/status"
    "otelcol|$OTLP_GRPC_PORT $OTLP_HTTP_PORT 13133 8888 $SPANMETRICS_PORT|http://127.0.0.1:13133/"
    "postgres|$PG_PORT|postgresql://127.0.0.1:$PG_PORT/users"
    "db|$DB_PORT|http://127.0.0.1:$DB_PORT/health/ready"
    "users|$USERS_PORT|http://127.0.0.1:$USERS_PORT/health"
    "gateway|$GATEWAY_PORT|http://127.0.0.1:$GATEWAY_PORT/health"
)
INFRA=(victoriametrics victorialogs zipkin jaeger otelcol)
STORES=(victoriametrics victorialogs zipkin jaeger)
declare -A STARTED_AT=()
SERVICES_LIST=(db users gateway)

field() { # component name, field index (1 ports, 2 health)
    local c
    for c in "${COMPONENTS[@]}"; do
        if [ "${c%%|*}" = "$1" ]; then
            IFS='|' read -r -a f <<<"$c"
            printf '%s' "${f[$2]}"
            return
        fi
    done
}

# Every process we start carries CELLO_STACK_RUN=<this checkout's .run> in its
# environment (children inherit it), so we can find all of them again, and tell
# them from unrelated processes that happen to reuse a pid.
marker="CELLO_STACK_RUN=$run"

is_ours() { # pid: alive and started by this checkout's stack.sh
    # grep -z: the file is NUL-separated. No pipe here: with pipefail, `tr | grep -q`
    # fails at random when grep exits before tr has written everything (SIGPIPE).
    grep -qzxF "$marker" "/proc/$1/environ" 2>/dev/null
}
our_pids() { # every live process carrying our marker
    local d pid
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [ "$pid" = "$$" ] && continue
        is_ours "$pid" && echo "$pid"
    done
    return 0
}
pid_of() { # component -> pid from .run/<name>.pid if that process is ours and alive
    local f=$run/$1.pid pid
    [ -f "$f" ] || return 1
    pid=$(cat "$f")
    [ -n "$pid" ] && is_ours "$pid" && echo "$pid"
}

listening() { # port -> true when something listens on 127.0.0.1/any at that TCP port
    if command -v ss >/dev/null; then
        [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}
port_owner() {
    if command -v ss >/dev/null; then
        ss -Hltnp "sport = :$1" 2>/dev/null | sed -n '1{s/.*users:(//; s/)$//; p}' 
    fi
}
healthy() {
    case $1 in
        postgresql://*) # the throwaway cluster: up once it lets db into its database
            [ -x "$repo/.venv/bin/python" ] &&
                "$repo/.venv/bin/python" "$repo/tools/pgcluster.py" ready --port "$PG_PORT" ;;
        *) curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null ;;
    esac
}

stop_pids() { # pid...: TERM each process group, wait, KILL what is left after 10s
    local pid i alive
    for pid in "$@"; do
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    for i in $(seq 1 100); do
        alive=""
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive+=" $pid"; done
        [ -z "$alive" ] && return 0
        sleep 0.1
    done
    say "still running 10s after SIGTERM, sending SIGKILL to:$alive"
    for pid in $alive; do kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; done
    sleep 0.5
}

stop_components() { # name...: stop those of ours that run, all at once
    local name pid pids=() names=()
    for name in "$@"; do
        if pid=$(pid_of "$name"); then pids+=("$pid"); names+=("$name($pid)"); fi
        rm -f "$run/$name.pid"
    done
    [ ${#pids[@]} -gt 0 ] || return 0
    local start=$SECONDS
    stop_pids "${pids[@]}"
    say "stopped ${names[*]} in $((SECONDS - start))s"
}

native_down() {
    local pid left i p ports=""
    for c in "${COMPONENTS[@]}"; do ports+=" $(field "${c%%|*}" 1)"; done
    # Services first, so their last telemetry can still reach the collector; then db's
    # database (if any), the collector (it flushes its queues to the stores), the stores.
    stop_components "${SERVICES_LIST[@]}"
    stop_components postgres
    stop_components otelcol
    stop_components "${STORES[@]}"
    # Anything else we started (children, or a component whose pid file was lost).
    left=$(our_pids)
    if [ -n "$left" ]; then
        for pid in $left; do
            say "stopping leftover process $pid ($({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | cut -c1-80))"
        done
        # shellcheck disable=SC2086
        stop_pids $left
    fi
    left=$(our_pids)
    [ -z "$left" ] || die "processes still running after stop: $left"
    for i in $(seq 1 25); do
        left=""
        for p in $ports; do listening "$p" && left+=" $p"; done
        [ -z "$left" ] && break
        sleep 0.2
    done
    if [ -n "$left" ]; then
        for p in $left; do say "port $p is still in use by: $(port_owner "$p")"; done
        die "ports still listening after stop:$left (not ours: stop them yourself)"
    fi
    rm -f "$run/sampling"
    rm -rf "$run/victoriametrics-data" "$run/victorialogs-data"
    say "native stack stopped; no process of ours and none of its ports left"
}

need_native() { # says what is missing to run the native stack; empty when all is there
    local t
    for t in otelcol jaeger zipkin victorialogs victoriametrics; do
        "$build" cached "$t" >/dev/null 2>&1 || "$build" check "$t" 2>&1 | sed 's/^missing: *//; s/^ *//'
    done
    # Zipkin always needs Java at run time, also when its jar is cached.
    "$build" check zipkin 2>&1 | grep -i java | sed 's/^missing: *//; s/^ *//' || true
    command -v curl >/dev/null || echo "curl (health checks)"
}

start() { # name, then env assignments..., --, command...
    local name=$1 pid
    shift
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    : >"$run/$name.log"
    printf '=== %s: %s\n' "$(date -u +%FT%TZ)" "$*" >>"$run/$name.log"
    (cd "$repo" && exec env "$marker" "${envs[@]}" setsid "$@" >>"$run/$name.log" 2>&1 </dev/null) &
    pid=$!
    STARTED_AT[$name]=$SECONDS
    echo "$pid" >"$run/$name.pid"
    say "started $name (pid $pid, log .run/$name.log)"
}

wait_healthy() { # name
    local name=$1 url pid deadline started=${STARTED_AT[$1]:-$SECONDS}
    url=$(field "$name" 2)
    pid=$(cat "$run/$name.pid")
    deadline=$((SECONDS + ${UP_TIMEOUT:-120}))
    while ! healthy "$url"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            fail_component "$name" "exited before becoming healthy"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail_component "$name" "not healthy at $url after ${UP_TIMEOUT:-120}s"
        fi
        sleep 0.5
    done
    say "$name is healthy ($url, $((SECONDS - started))s)"
}

fail_component() {
    printf 'stack: error: %s %s. Last lines of .run/%s.log:\n' "$1" "$2" "$1" >&2
    tail -n 30 "$run/$1.log" | sed 's/^/    /' >&2
    say "stopping what was started (set KEEP_ON_FAILURE=1 to keep it for debugging)" >&2
    [ "${KEEP_ON_FAILURE:-0}" = 1 ] || native_down >&2
    exit 1
}

native_up() {
    local infra_only=$1 missing name p busy=""
    missing=$(need_native | sed '/^$/d' | sort -u)
    if [ -n "$missing" ]; then
        {
            echo "stack: error: cannot run the native stack, missing:"
            printf '%s\n' "$missing" | sed 's/^/    - /'
            echo "    (or use Docker: STACK=compose needs a running Docker engine with the compose plugin)"
        } >&2
        exit 1
    fi
    mkdir -p "$run"

    local names=("${INFRA[@]}")
    if [ "$infra_only" != 1 ]; then
        [ "$DB" = postgres ] && names+=(postgres)
        names+=("${SERVICES_LIST[@]}")
    fi

    # Already up (all requested components ours, alive and healthy)? Then nothing to do.
    local all_up=1 running_sampling
    for name in "${names[@]}"; do
        if ! pid_of "$name" >/dev/null || ! healthy "$(field "$name" 2)"; then all_up=0; fi
    done
    running_sampling=$(cat "$run/sampling" 2>/dev/null || echo head)
    if [ "$all_up" = 1 ] && [ "$running_sampling" != "$sampling" ]; then
        die "the stack is up with SAMPLING=$running_sampling; stop it first to switch: deploy/stack.sh down"
    fi
    if [ "$all_up" = 1 ]; then
        say "already up: ${names[*]}, SAMPLING=$sampling (restart with: deploy/stack.sh down && deploy/stack.sh up)"
        print_urls "$infra_only"
        return 0
    fi
    # Leftovers of an earlier run of this checkout: stop them first.
    if [ -n "$(our_pids)" ]; then
        say "processes from an earlier run of this checkout are still up: stopping them first"
        native_down
    fi
    # Cello (and the collector) bind with SO_REUSEPORT: a second process on a busy port
    # starts without error and silently shares the traffic. So refuse to start at all
    # while anything else listens on one of our ports.
    for name in "${names[@]}"; do
        for p in $(field "$name" 1); do
            if listening "$p"; then busy+="    port $p ($name): $(port_owner "$p")"$'\n'; fi
        done
    done
    if [ -n "$busy" ]; then
        printf 'stack: error: ports needed by the stack are in use by other processes:\n%s' "$busy" >&2
        echo "stack: stop those processes (or the other stack) and run 'deploy/stack.sh up' again" >&2
        exit 1
    fi

    local otelcol jaeger zipkin vm vl
    say "building the native tools if needed (cached in ${CELLO_TRACING_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cello-tracing})"
    otelcol=$("$build" path otelcol)
    jaeger=$("$build" path jaeger)
    zipkin=$("$build" path zipkin)
    vm=$("$build" path victoriametrics)
    vl=$("$build" path victorialogs)

    # Zipkin's JVM takes longest to start: its wait comes last, the rest overlaps with it.
    start zipkin STORAGE_TYPE=mem ZIPKIN_UI_LOGS_URL="$LOGS_URL" -- \
        java -Xms64m -Xmx384m -XX:+ExitOnOutOfMemoryError -jar "$zipkin" \
        '--armeria.ports[0].ip=127.0.0.1' "--armeria.ports[0].port=$ZIPKIN_PORT" '--armeria.ports[0].protocols[0]=http'
    # The same flags as the compose services. usePrometheusNaming: Prometheus names
    # (http_server_request_duration_seconds_bucket{service_name=...}), which Jaeger's
    # Monitor queries and PromQL users expect. latencyOffset: show samples after 1 s,
    # not after the default 30 s.
    start victoriametrics -- "$vm" -httpListenAddr="127.0.0.1:$VM_PORT" \
        -storageDataPath="$run/victoriametrics-data" -retentionPeriod=1d \
        -opentelemetry.usePrometheusNaming -search.latencyOffset=1s
    start victorialogs -- "$vl" -httpListenAddr="127.0.0.1:$VL_PORT" \
        -storageDataPath="$run/victorialogs-data" -retentionPeriod=1d
    start jaeger JAEGER_UI_CONFIG="$deploy/jaeger-ui.json" METRICS_QUERY_URL="http://127.0.0.1:$VM_PORT" \
        JAEGER_QUERY_PORT="$JAEGER_PORT" -- \
        "$jaeger" --config="$deploy/native/jaeger.yaml"
    wait_healthy victoriametrics
    wait_healthy victorialogs
    wait_healthy jaeger
    start otelcol OTELCOL_LISTEN_HOST=127.0.0.1 JAEGER_OTLP_ENDPOINT=127.0.0.1:14317 \
        OTELCOL_OTLP_GRPC_PORT="$OTLP_GRPC_PORT" OTELCOL_OTLP_HTTP_PORT="$OTLP_HTTP_PORT" \
        OTELCOL_SPANMETRICS_PORT="$SPANMETRICS_PORT" ZIPKIN_ENDPOINT="http://127.0.0.1:$ZIPKIN_PORT/api/v2/spans" \
        VICTORIAMETRICS_OTLP_ENDPOINT="http://127.0.0.1:$VM_PORT/opentelemetry/v1/metrics" \
        VICTORIALOGS_OTLP_ENDPOINT="http://127.0.0.1:$VL_PORT/insert/opentelemetry/v1/logs" -- "$otelcol" \
        --config="$deploy/otel-collector.yaml" --config="$deploy/sampling/$sampling.yaml"
    echo "$sampling" >"$run/sampling"
    wait_healthy otelcol

    if [ "$infra_only" != 1 ]; then
        if [ ! -x "$repo/.venv/bin/python" ]; then
            say ".venv is missing: running 'make setup'"
            make -C "$repo" setup
        fi
        local otlp=OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$OTLP_GRPC_PORT py=$repo/.venv/bin/python
        # The batch processor's own counters (on /health); the SDK reads this switch only
        # from the environment, so the deployment sets it, as services/Dockerfile does.
        local sdk_metrics=OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true
        local database=() # db's default: SQLite under ./data/ (or DATABASE_URL from the shell)
        if [ "$DB" = postgres ]; then
            start postgres -- "$py" tools/pgcluster.py serve --port "$PG_PORT" --database users
            wait_healthy postgres
            database=("DATABASE_URL=postgresql+asyncpg://cello@127.0.0.1:$PG_PORT/users")
        fi
        start db HOST=127.0.0.1 PORT="$DB_PORT" "$otlp" "$sdk_metrics" "${database[@]}" -- "$py" -m db
        start users HOST=127.0.0.1 PORT="$USERS_PORT" DB_SERVICE_URL="http://127.0.0.1:$DB_PORT" \
            DB_SERVICE_NAME="$(envval DB_SERVICE_NAME)" "$otlp" "$sdk_metrics" -- "$py" -m users
        start gateway HOST=127.0.0.1 PORT="$GATEWAY_PORT" USERS_SERVICE_URL="http://127.0.0.1:$USERS_PORT" \
            USERS_SERVICE_NAME="$(envval USERS_SERVICE_NAME)" "$otlp" "$sdk_metrics" -- "$py" -m gateway
        wait_healthy db
        wait_healthy users
        wait_healthy gateway
    fi
    wait_healthy zipkin

    echo
    say "native stack is up (logs and pids in .run/; stop with: deploy/stack.sh down)"
    print_urls "$infra_only"
}

print_urls() {
    [ "$1" = 1 ] || echo "    gateway         http://127.0.0.1:$GATEWAY_PORT"
    echo "    Jaeger UI/API   http://127.0.0.1:$JAEGER_PORT   (natively the UI page is a placeholder; the API works: /api/traces/{id})"
    echo "    Zipkin UI/API   http://127.0.0.1:$ZIPKIN_PORT   (a trace's Logs button opens its logs)"
    echo "    Logs UI         http://127.0.0.1:$VL_PORT/select/vmui/   (VictoriaLogs; LogsQL, e.g. trace_id:<id>)"
    echo "    Metrics UI      http://127.0.0.1:$VM_PORT/vmui/   (VictoriaMetrics; PromQL)"
    echo "    OTLP in         grpc 127.0.0.1:$OTLP_GRPC_PORT, http 127.0.0.1:$OTLP_HTTP_PORT"
    echo "    RED metrics     http://127.0.0.1:$SPANMETRICS_PORT/metrics   (SAMPLING=$sampling)"
}

# Resident memory of one process, in MiB ("-" when it is gone).
rss_mib() {
    awk '/^VmRSS:/ { printf "%d", $2 / 1024; found = 1 } END { if (!found) printf "-" }' \
        "/proc/$1/status" 2>/dev/null || printf -- -
}

native_status() {
    local c name ports url pid state health rss total=0
    [ -f "$run/sampling" ] && say "sampling: $(cat "$run/sampling")"
    printf '%-15s %-8s %-9s %-8s %-8s %s\n' COMPONENT PID STATE HEALTH RSS_MIB PORTS
    for c in "${COMPONENTS[@]}"; do
        IFS='|' read -r name ports url <<<"$c"
        if pid=$(pid_of "$name"); then state=running; rss=$(rss_mib "$pid"); else pid=-; state=stopped; rss=-; fi
        if healthy "$url"; then health=ok; else health=-; fi
        [ "$state" = stopped ] && [ "$health" = ok ] && state=foreign
        [ "$rss" != - ] && total=$((total + rss))
        printf '%-15s %-8s %-9s %-8s %-8s %s\n' "$name" "$pid" "$state" "$health" "$rss" "$ports"
    done
    printf '%-15s %-8s %-9s %-8s %-8s\n' total '' '' '' "$total"
}

native_logs() {
    local follow=0 names=() n
    for n in "$@"; do
        case $n in -f | --follow) follow=1 ;; *) names+=("$n") ;; esac
    done
    [ ${#names[@]} -gt 0 ] || names=("${INFRA[@]}" postgres "${SERVICES_LIST[@]}")
    local files=()
    for n in "${names[@]}"; do
        [ -n "$(field "$n" 1)" ] || die "unknown component '$n' (${INFRA[*]} postgres ${SERVICES_LIST[*]})"
        [ -f "$run/$n.log" ] && files+=("$run/$n.log")
    done
    [ ${#files[@]} -gt 0 ] || die "no logs in .run/ yet (start with: deploy/stack.sh up)"
    if [ "$follow" = 1 ]; then exec tail -n 20 -F "${files[@]}"; else tail -n 40 "${files[@]}"; fi
}

# --- compose -------------------------------------------------------------------
have_docker() {
    command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1
}
compose() {
    docker compose version >/dev/null 2>&1 ||
        die "the Docker engine answers but 'docker compose' (the compose plugin) is missing; or use STACK=native"
    docker compose "${compose_args[@]}" "$@"
}
compose_up() {
    if [ "$DB" = postgres ]; then
        export COMPOSE_PROFILES=postgres
        export DATABASE_URL=postgresql+asyncpg://cello:${POSTGRES_PASSWORD:-cello}@postgres:5432/users
    fi
    if [ "$1" = 1 ]; then
        compose up -d --build --wait victoriametrics victorialogs zipkin jaeger otel-collector
    else
        compose up -d --build --wait
    fi
    say "compose stack is up, SAMPLING=$sampling (stop with: deploy/stack.sh down)"
    [ "$1" = 1 ] || echo "    gateway         http://127.0.0.1:$GATEWAY_PORT"
    echo "    Jaeger UI/API   http://127.0.0.1:$JAEGER_PORT   (Monitor tab: RED metrics from VictoriaMetrics)"
    echo "    Zipkin UI/API   http://127.0.0.1:$ZIPKIN_PORT   (a trace's Logs button opens its logs)"
    echo "    Logs UI         http://127.0.0.1:$VL_PORT/select/vmui/   (VictoriaLogs)"
    echo "    Metrics UI      http://127.0.0.1:$VM_PORT/vmui/   (VictoriaMetrics)"
    echo "    RED metrics     http://127.0.0.1:$SPANMETRICS_PORT/metrics"
}
compose_logs() {
    local args=(--tail=100) n
    for n in "$@"; do
        case $n in -f | --follow) args+=(-f) ;; otelcol) args+=(otel-collector) ;; *) args+=("$n") ;; esac
    done
    compose logs "${args[@]}"
}

# --- main ----------------------------------------------------------------------
mode() {
    case ${STACK:-} in
        compose | native) echo "$STACK" ;;
        "") if have_docker; then echo compose; else echo native; fi ;;
        *) die "STACK must be 'compose' or 'native' (got '$STACK')" ;;
    esac
}

main() {
    local cmd=${1:-}
    [ $# -gt 0 ] && shift
    case $sampling in
        head | tail) ;;
        *) die "SAMPLING must be 'head' or 'tail' (got '$sampling')" ;;
    esac
    local m infra_only=0
    [ "${SERVICES:-1}" = 0 ] && infra_only=1
    case $cmd in
        up)
            for a in "$@"; do
                case $a in --infra-only) infra_only=1 ;; *) die "unknown option for up: $a" ;; esac
            done
            m=$(mode)
            if [ "$m" = compose ]; then
                have_docker || die "STACK=compose but the Docker engine does not answer ('docker info' fails)"
                compose_up "$infra_only"
            else
                [ -n "${STACK:-}" ] || say "no Docker engine ('docker info' fails): using the native stack"
                native_up "$infra_only"
            fi ;;
        down)
            m=$(mode)
            # --profile postgres: stop the PostgreSQL container too, whichever DB started it.
            if [ "$m" = compose ]; then compose --profile postgres down --remove-orphans; else native_down; fi ;;
        status)
            m=$(mode)
            say "mode: $m"
            if [ "$m" = compose ]; then compose ps; else native_status; fi ;;
        logs)
            m=$(mode)
            if [ "$m" = compose ]; then compose_logs "$@"; else native_logs "$@"; fi ;;
        build)
            "$build" otelcol jaeger zipkin victorialogs victoriametrics ;;
        -h | --help | help | "")
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
        *) die "unknown command '$cmd' (up, down, status, logs, build)" ;;
    esac
}

main "$@"
