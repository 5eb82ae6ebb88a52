#!/usr/bin/env sh
# Print the path of a Python >= 3.12 interpreter, or explain what is missing.
#
# Cello 1.4.1 needs Python 3.12 or newer. We try what a user most likely has on
# PATH first, then pyenv installs directly: a pyenv shim such as `python3.12`
# exists on PATH but fails unless that version is selected, so every candidate
# is run, not just looked up.
set -eu

ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }

for candidate in ${PYTHON:-} python3.12 python3.13 python3.14 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && ok "$candidate"; then
        "$candidate" -c 'import sys; print(sys.executable)'
        exit 0
    fi
done

pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
for candidate in "$pyenv_root"/versions/3.1[2-9]*/bin/python; do
    if [ -x "$candidate" ] && ok "$candidate"; then
        echo "$candidate"
        exit 0
    fi
done

echo "error: Python >= 3.12 not found (tried \$PYTHON, python3.12, python3.13, python3.14," \
     "python3 and $pyenv_root/versions/3.12+). Install Python 3.12 or set PYTHON=/path/to/python." >&2
exit 1
