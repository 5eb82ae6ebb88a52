#!/usr/bin/env bash
# Render an overlay of the demo's Kubernetes manifests to stdout.
#
# Usage: deploy/k8s/render.sh dev|scale
#   deploy/k8s/render.sh dev | kubectl apply -f -
#
# Builds with --load-restrictor LoadRestrictionsNone because base/kustomization.yaml
# reads deploy/otel-collector.yaml, outside its own directory (why: see that file).
# kustomize comes from $KUSTOMIZE, else from deploy/native/build.sh (built once from
# the Go module at KUSTOMIZE_VERSION in deploy/.env). `kubectl kustomize
# --load-restrictor LoadRestrictionsNone deploy/k8s/overlays/dev` renders the same
# with kubectl's own kustomize.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
overlay=${1:-}
if [ $# -ne 1 ] || [ ! -f "$here/overlays/$overlay/kustomization.yaml" ]; then
    echo "usage: $0 OVERLAY   (one of: $(cd "$here/overlays" && echo *))" >&2
    exit 2
fi
kustomize=${KUSTOMIZE:-$("$here/../native/build.sh" path kustomize)}
exec "$kustomize" build --load-restrictor LoadRestrictionsNone "$here/overlays/$overlay"
