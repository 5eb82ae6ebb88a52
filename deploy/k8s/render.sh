#!/usr/bin/env bash
# Render an overlay of the demo's Kubernetes manifests to stdout.
#
# Usage: deploy/k8s/render.sh dev|scale
#
# The same as `kubectl kustomize deploy/k8s/overlays/dev` (and `kubectl apply -k
# deploy/k8s/overlays/dev` applies it), with the kustomize that the tests use: from
# $KUSTOMIZE, else from deploy/native/build.sh (built once from the Go module at
# KUSTOMIZE_VERSION in deploy/.env).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
overlay=${1:-}
if [ $# -ne 1 ] || [ ! -f "$here/overlays/$overlay/kustomization.yaml" ]; then
    echo "usage: $0 OVERLAY   (one of: $(cd "$here/overlays" && echo *))" >&2
    exit 2
fi
kustomize=${KUSTOMIZE:-$("$here/../native/build.sh" path kustomize)}
exec "$kustomize" build "$here/overlays/$overlay"
