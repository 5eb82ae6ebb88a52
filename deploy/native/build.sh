#!/usr/bin/env bash
# Build (or fetch) the native tracing tools once per machine, into a cache shared by
# every clone:  ${CELLO_TRACING_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cello-tracing}
#
#   otelcol       OpenTelemetry Collector built with the Collector Builder (ocb) from
#                 otelcol-builder.yaml               -> bin/otelcol-<ver>-<manifest hash>
#   jaeger        Jaeger v2 built from the Go module, via the tools module in jaeger/
#                                                    -> bin/jaeger-<ver>-<go.sum hash>
#   zipkin        io.zipkin:zipkin-server:<ver>:exec from Maven Central (run with Java 17+)
#                                                    -> zipkin/zipkin-server-<ver>-exec.jar
#   victorialogs  VictoriaLogs (logs store, web UI embedded), `go install`ed from
#                 github.com/VictoriaMetrics/VictoriaLogs at VICTORIALOGS_VERSION
#                                                    -> bin/victoria-logs-<ver>
#   victoriametrics  VictoriaMetrics single-node (metrics store, web UI embedded),
#                 `go install`ed from github.com/VictoriaMetrics/VictoriaMetrics at
#                 VICTORIAMETRICS_VERSION            -> bin/victoria-metrics-<ver>
#   composecheck  Compose file loader/validator (compose-go), for tests/deploy
#                                                    -> bin/composecheck-<source hash>
#   kustomize     kustomize, `go install`ed from sigs.k8s.io/kustomize/kustomize/v5 at
#                 KUSTOMIZE_VERSION (its own go.sum pins the rest), renders deploy/k8s
#                 for tests/deploy                   -> bin/kustomize-<ver>
#
# Usage: build.sh [all|otelcol|jaeger|zipkin|victorialogs|victoriametrics|composecheck|kustomize]...
#                                                                build what is missing
#        build.sh path NAME                                       build if missing, print path
#        build.sh check [NAME...]                                 say which prerequisites are missing
#        build.sh cached NAME                                     print the path if already built
# Versions come from deploy/.env (the same ones the compose file uses).
# A cached artefact is reused while its inputs (versions, manifest, go.sum) are unchanged;
# delete it (or the whole cache) to force a rebuild.
# Cold, on 2 cores, measured: otelcol ~5 min, jaeger ~11 min, zipkin ~0.5 min, victorialogs
# and victoriametrics ~1 min of CPU each (2.5-3 min with the other core busy), composecheck
# ~0.5 min, kustomize ~1.5 min (~23 min in all, downloads included); cached: well under a
# second.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
deploy=$(dirname "$here")

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

envval() {
    local v
    v=$(sed -n "s/^$1=//p" "$deploy/.env" | tail -n 1)
    [ -n "$v" ] || die "$1 is not set in $deploy/.env"
    printf '%s' "$v"
}
OTELCOL_VERSION=$(envval OTELCOL_VERSION)
JAEGER_VERSION=$(envval JAEGER_VERSION)
JAEGER_GO_MODULE_VERSION=$(envval JAEGER_GO_MODULE_VERSION)
ZIPKIN_VERSION=$(envval ZIPKIN_VERSION)
KUSTOMIZE_VERSION=$(envval KUSTOMIZE_VERSION)
VICTORIALOGS_VERSION=$(envval VICTORIALOGS_VERSION)
VICTORIAMETRICS_VERSION=$(envval VICTORIAMETRICS_VERSION)
MAVEN_DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

CACHE=${CELLO_TRACING_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cello-tracing}

hash_of() { cat "$@" | sha256sum | cut -c1-10; }

path_of() {
    case $1 in
        otelcol) echo "$CACHE/bin/otelcol-$OTELCOL_VERSION-$(hash_of "$here/otelcol-builder.yaml")" ;;
        jaeger) echo "$CACHE/bin/jaeger-$JAEGER_VERSION-$(hash_of "$here/jaeger/go.mod" "$here/jaeger/go.sum")" ;;
        zipkin) echo "$CACHE/zipkin/zipkin-server-$ZIPKIN_VERSION-exec.jar" ;;
        composecheck)
            echo "$CACHE/bin/composecheck-$(hash_of "$here/composecheck/go.mod" "$here/composecheck/go.sum" "$here/composecheck/main.go")" ;;
        kustomize) echo "$CACHE/bin/kustomize-$KUSTOMIZE_VERSION" ;;
        victorialogs) echo "$CACHE/bin/victoria-logs-$VICTORIALOGS_VERSION" ;;
        victoriametrics) echo "$CACHE/bin/victoria-metrics-$VICTORIAMETRICS_VERSION" ;;
        *) die "unknown tool '$1' (otelcol, jaeger, zipkin, victorialogs, victoriametrics, composecheck, kustomize)" ;;
    esac
}

# --- prerequisites ---------------------------------------------------------------
GO=""
find_go() {
    [ -n "$GO" ] && return 0
    GO=$(command -v go || true)
    [ -z "$GO" ] && [ -x /usr/local/go/bin/go ] && GO=/usr/local/go/bin/go
    [ -n "$GO" ] || return 1
    local v
    v=$("$GO" env GOVERSION 2>/dev/null | sed 's/^go//')
    case $v in
        1.2[4-9]* | 1.[3-9][0-9]* | [2-9].*) return 0 ;;
        *) GO=""; return 2 ;;
    esac
}
java_major() {
    command -v java >/dev/null || return 1
    java -version 2>&1 | sed -n '/version "/{s/.*version "\([0-9]*\).*/\1/p;q}'
}
missing_for() { # prints what is missing to build $1, nothing if all is there
    case $1 in
        otelcol | jaeger | composecheck)
            find_go || echo "Go >= 1.24 ('go' on PATH or /usr/local/go/bin/go) to build $1" ;;
        kustomize | victorialogs | victoriametrics) # their go.mod asks for a newer Go than the others
            if ! find_go || [ "$("$GO" env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')" -lt 26 ]; then
                echo "Go >= 1.26 ('go' on PATH or /usr/local/go/bin/go) to build $1"
            fi ;;
        zipkin)
            local major
            major=$(java_major || true)
            if [ -z "$major" ]; then echo "Java >= 17 ('java' on PATH) to run Zipkin"
            elif [ "$major" -lt 17 ]; then echo "Java >= 17 to run Zipkin (found Java $major)"
            fi
            command -v mvn >/dev/null || echo "Maven ('mvn' on PATH) to fetch the Zipkin server jar" ;;
    esac
}
require() {
    local m
    m=$(missing_for "$1")
    [ -z "$m" ] || die "cannot build $1: missing $m"
}

# --- builders ------------------------------------------------------------------
timed() { # name, then command
    local name=$1 start=$SECONDS
    shift
    "$@"
    log "$name: done in $((SECONDS - start))s"
}

build_otelcol() {
    local out=$1 manifest=$here/otelcol-builder.yaml
    # Every component must carry OTELCOL_VERSION, the version the image in deploy/.env has.
    if grep -E '^\s*(-\s*gomod:|version:)' "$manifest" | grep -v "$OTELCOL_VERSION" >&2; then
        die "$manifest: the lines above do not match OTELCOL_VERSION=$OTELCOL_VERSION from deploy/.env"
    fi
    local ocb=$CACHE/bin/ocb-$OTELCOL_VERSION
    if [ ! -x "$ocb" ]; then
        log "otelcol: installing the Collector Builder v$OTELCOL_VERSION (~1 min cold)"
        GOBIN="$CACHE/tmp/ocb" "$GO" install "go.opentelemetry.io/collector/cmd/builder@v$OTELCOL_VERSION"
        mv "$CACHE/tmp/ocb/builder" "$ocb"
    fi
    local work=$CACHE/tmp/otelcol
    rm -rf "$work" && mkdir -p "$work"
    log "otelcol: generating and compiling the collector (~5 min cold on 2 cores)"
    (cd "$work" && "$ocb" --config="$manifest") >"$work.log" 2>&1 || {
        tail -n 40 "$work.log" >&2
        die "otelcol: the Collector Builder failed (full log: $work.log)"
    }
    "$work/dist/otelcol-cello" components >/dev/null || die "otelcol: the built binary does not run"
    mv "$work/dist/otelcol-cello" "$out"
    rm -rf "$work"
}

build_jaeger() {
    local out=$1
    grep -Eq "^\s*github.com/jaegertracing/jaeger $JAEGER_GO_MODULE_VERSION( // indirect)?\$" "$here/jaeger/go.mod" ||
        die "$here/jaeger/go.mod does not require github.com/jaegertracing/jaeger $JAEGER_GO_MODULE_VERSION"
    log "jaeger: compiling Jaeger $JAEGER_VERSION (module $JAEGER_GO_MODULE_VERSION; ~11 min cold on 2 cores)"
    (cd "$here/jaeger" && "$GO" build -trimpath \
        -ldflags "-s -w -X github.com/jaegertracing/jaeger/internal/version.latestVersion=v$JAEGER_VERSION" \
        -o "$out.tmp" github.com/jaegertracing/jaeger/cmd/jaeger)
    mv "$out.tmp" "$out"
}

build_zipkin() {
    local out=$1 tmp=$CACHE/tmp/zipkin
    rm -rf "$tmp" && mkdir -p "$tmp"
    log "zipkin: fetching io.zipkin:zipkin-server:$ZIPKIN_VERSION:exec with Maven (~130 MB)"
    (cd "$tmp" && mvn -B -C --no-transfer-progress -Dstyle.color=never "$MAVEN_DEPENDENCY_PLUGIN:copy" \
        "-Dartifact=io.zipkin:zipkin-server:$ZIPKIN_VERSION:jar:exec" -DoutputDirectory="$tmp") >"$tmp.log" 2>&1 || {
        tail -n 30 "$tmp.log" >&2
        die "zipkin: Maven could not fetch io.zipkin:zipkin-server:$ZIPKIN_VERSION:jar:exec"
    }
    mkdir -p "$(dirname "$out")"
    mv "$tmp/zipkin-server-$ZIPKIN_VERSION-exec.jar" "$out"
    rm -rf "$tmp"
}

build_composecheck() {
    local out=$1
    log "composecheck: compiling the compose-go loader (~1 min cold)"
    (cd "$here/composecheck" && "$GO" build -trimpath -ldflags "-s -w" -o "$out.tmp" .)
    mv "$out.tmp" "$out"
}

build_kustomize() {
    local out=$1
    log "kustomize: compiling kustomize $KUSTOMIZE_VERSION (~1.5 min cold)"
    # `go install module@version` builds with the module's own go.mod and go.sum.
    GOBIN="$CACHE/tmp/kustomize" "$GO" install -trimpath -ldflags "-s -w" \
        "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
    mv "$CACHE/tmp/kustomize/kustomize" "$out"
    rm -rf "$CACHE/tmp/kustomize"
}

# VictoriaLogs and VictoriaMetrics: `go install module/app/NAME@version` builds with the
# module's own go.mod and go.sum (neither has a replace directive), with the web UI that
# the module embeds. CGO_ENABLED=0 is upstream's "pure" build: no C compiler needed.
go_install_victoria() { # out, module, app, version
    local out=$1 module=$2 app=$3 version=$4 tmp=$CACHE/tmp/$3
    log "$app: compiling $module $version (1-3 min cold)"
    rm -rf "$tmp"
    CGO_ENABLED=0 GOBIN="$tmp" "$GO" install -trimpath \
        -ldflags "-s -w -X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=$app-$version" \
        "$module/app/$app@$version"
    "$tmp/$app" -version >/dev/null || die "$app: the built binary does not run"
    mv "$tmp/$app" "$out"
    rm -rf "$tmp"
}
build_victorialogs() {
    go_install_victoria "$1" github.com/VictoriaMetrics/VictoriaLogs victoria-logs "$VICTORIALOGS_VERSION"
}
build_victoriametrics() {
    go_install_victoria "$1" github.com/VictoriaMetrics/VictoriaMetrics victoria-metrics "$VICTORIAMETRICS_VERSION"
}

ensure() {
    local name=$1 out
    out=$(path_of "$name")
    if [ -e "$out" ]; then
        return 0
    fi
    require "$name"
    case $name in otelcol | jaeger | composecheck | kustomize | victoria*) find_go ;; esac
    mkdir -p "$CACHE/bin" "$CACHE/tmp"
    # One build at a time per cache (a test run and `stack.sh up` may race).
    exec 9>"$CACHE/.build.lock"
    if command -v flock >/dev/null; then
        flock -n 9 || { log "$name: waiting for another build in $CACHE to finish"; flock 9; }
    fi
    if [ ! -e "$out" ]; then
        timed "$name" "build_$name" "$out"
    fi
    exec 9>&-
}

main() {
    local cmd=${1:-all}
    case $cmd in
        path)
            [ $# -eq 2 ] || die "usage: build.sh path NAME"
            ensure "$2"
            path_of "$2" ;;
        check)
            shift
            local missing="" t
            for t in ${*:-otelcol jaeger zipkin victorialogs victoriametrics}; do missing+=$(missing_for "$t")$'\n'; done
            missing=$(printf '%s' "$missing" | sed '/^$/d' | sort -u)
            if [ -n "$missing" ]; then printf '%s\n' "$missing" | sed 's/^/missing: /' >&2; return 1; fi ;;
        cached)
            [ $# -eq 2 ] || die "usage: build.sh cached NAME"
            [ -e "$(path_of "$2")" ] && path_of "$2" ;;
        all)
            for t in otelcol jaeger zipkin victorialogs victoriametrics composecheck kustomize; do ensure "$t"; done
            log "all tools are in $CACHE" ;;
        -h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
        *)
            for t in "$@"; do ensure "$t"; done ;;
    esac
}

main "$@"
