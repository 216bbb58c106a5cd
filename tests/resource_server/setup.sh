#!/usr/bin/env bash
# Installs what the Node and Python resource-server checks need into this
# directory (never globally): `jose` from npm into node_modules/, PyJWT
# with its crypto extra from PyPI into .pydeps/. tests/it/resources.rs runs
# verify.mjs and verify.py when these exist, and says why it skips
# otherwise. Each half is skipped, with the reason, when node or python3
# is missing or the registry cannot be reached.
set -uo pipefail
cd "$(dirname "$0")"
if command -v node >/dev/null && command -v npm >/dev/null; then
    npm install --no-save --no-audit --no-fund --prefix . jose@5 >/dev/null \
        || echo "resource_server: npm install jose failed; the Node check will be skipped" >&2
else
    echo "resource_server: node/npm not installed; the Node check will be skipped" >&2
fi
if command -v python3 >/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check --target .pydeps 'PyJWT[crypto]>=2.8' \
        || echo "resource_server: pip install PyJWT[crypto] failed; the Python check will be skipped" >&2
else
    echo "resource_server: python3 not installed; the Python check will be skipped" >&2
fi
exit 0
