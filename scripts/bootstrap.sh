#!/usr/bin/env sh
# Create .venv on Python >= 3.12 and install the locked dependencies.
#
# uv itself is installed once per machine into the project cache
# ($CELLO_TRACING_CACHE, default ~/.cache/cello-tracing), so a clean clone on a
# machine that has run this before needs no downloads beyond uv's own cache.
set -eu
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
cache=${CELLO_TRACING_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cello-tracing}
uv_home="$cache/uv-$UV_VERSION"
python=$(scripts/find-python.sh)

if [ ! -x "$uv_home/bin/uv" ]; then
    echo "bootstrap: installing uv $UV_VERSION into $uv_home"
    "$python" -m venv "$uv_home"
    "$uv_home/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi

export UV_PROJECT_ENVIRONMENT="$PWD/.venv"
# RELOCK=1 (make new-service): a new workspace member joins uv.lock first.
if [ "${RELOCK:-0}" = 1 ]; then
    "$uv_home/bin/uv" lock --python "$python" --quiet
fi
# --frozen: install exactly what uv.lock says; never re-resolve behind the user's back.
# --all-packages: the tools, the library and every service of the workspace.
"$uv_home/bin/uv" sync --frozen --all-packages --python "$python" ${UV_SYNC_ARGS:-} --quiet
