#!/usr/bin/env bash
# check-metadata.sh - validate OData CSDL 4.0 XML ($metadata) documents.
#
# Usage: check-metadata.sh FILE.xml [FILE.xml ...]
#
# Needs: bash, Node >= 18 with npm, Python 3 (3.11 tested). Reaches only the npm
# registry and PyPI, and only on the first run; everything is installed into
# .tooling/ next to this script (add it to .gitignore).
#
# Checks, per file:
#   xsd            OASIS edmx.xsd/edm.xsd (shipped by npm odata-csdl) with Python
#                  lxml; falls back to xmllint-wasm (also libxml2) when no Python
#                  venv can be created (Debian without python3-venv).
#   odata-csdl     OASIS TC CSDL XML->JSON converter: namespaces, elements,
#                  attributes, occurrences, name collisions.
#   json-schema    converted model against the OASIS CSDL JSON schema (ajv).
#   model          reference resolution and CSDL model rules (csdl-check.js).
#   odata-openapi  OASIS TC OpenAPI converter must process the model.
#
# Exit status: 0 all files valid (warnings allowed), 1 errors found,
#              2 usage or tool installation problem.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="${CSDLCHECK_TOOLS_DIR:-$HERE/.tooling}"

if [ "$#" -eq 0 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
for f in "$@"; do
  if [ ! -f "$f" ]; then echo "check-metadata: no such file: $f" >&2; exit 2; fi
done

# ------------------------------------------------------------------ pinned tools
NPM_PACKAGE_JSON='{
  "name": "csdlcheck-tooling",
  "private": true,
  "description": "tooling for check-metadata.sh",
  "dependencies": {
    "ajv": "8.20.0",
    "odata-csdl": "0.11.2",
    "odata-openapi": "0.29.0",
    "sax": "1.6.1",
    "xmllint-wasm": "5.3.0"
  },
  "overrides": {
    "@discoveryjs/json-ext": "0.6.3",
    "colors": "1.4.0",
    "fast-deep-equal": "3.1.3",
    "fast-uri": "3.1.9",
    "json-schema-traverse": "1.0.0",
    "require-from-string": "2.0.2"
  }
}'
PIP_REQUIREMENT='lxml==6.1.3'
STAMP="npm:$(printf '%s' "$NPM_PACKAGE_JSON" | cksum | cut -d' ' -f1) pip:$PIP_REQUIREMENT"

mkdir -p "$TOOLS"

install_npm() {
  if [ -f "$TOOLS/.npm-stamp" ] && [ "$(cat "$TOOLS/.npm-stamp")" = "$STAMP" ] \
     && [ -d "$TOOLS/node_modules/odata-csdl/schemas" ]; then
    return 0
  fi
  command -v npm >/dev/null || { echo "check-metadata: npm not found" >&2; exit 2; }
  printf '%s\n' "$NPM_PACKAGE_JSON" > "$TOOLS/package.json"
  rm -rf "$TOOLS/node_modules" "$TOOLS/package-lock.json"
  echo "check-metadata: installing npm tooling into $TOOLS ..." >&2
  (cd "$TOOLS" && npm install --no-audit --no-fund --legacy-peer-deps --loglevel=error >&2) \
    || { echo "check-metadata: npm install failed" >&2; exit 2; }
  printf '%s' "$STAMP" > "$TOOLS/.npm-stamp"
}

# Sets PY to the venv python, or leaves it empty if no venv can be had.
PY=""
install_python() {
  local venv="$TOOLS/venv"
  if [ -f "$TOOLS/.pip-stamp" ] && [ "$(cat "$TOOLS/.pip-stamp")" = "$STAMP" ] \
     && "$venv/bin/python" -c 'import lxml.etree' 2>/dev/null; then
    PY="$venv/bin/python"; return 0
  fi
  command -v python3 >/dev/null || { echo "check-metadata: python3 not found; using xmllint-wasm for the XSD step" >&2; return 0; }
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1 || [ ! -x "$venv/bin/pip" ]; then
    rm -rf "$venv"
    echo "check-metadata: cannot create a Python venv (on Debian: apt-get install python3-venv); using xmllint-wasm for the XSD step" >&2
    return 0
  fi
  echo "check-metadata: installing $PIP_REQUIREMENT into $venv ..." >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: "$PIP_REQUIREMENT" >&2 \
    || { echo "check-metadata: pip install $PIP_REQUIREMENT failed" >&2; exit 2; }
  printf '%s' "$STAMP" > "$TOOLS/.pip-stamp"
  PY="$venv/bin/python"
}

install_npm
install_python

# ------------------------------------------------------------------ run checks
export NODE_PATH="$TOOLS/node_modules"
status=0

if [ -n "$PY" ]; then
  "$PY" "$HERE/xsd-check.py" "$TOOLS/node_modules/odata-csdl/schemas" "$@" || status=1
  node "$HERE/csdl-check.js" "$@" || { rc=$?; [ "$rc" -eq 1 ] && status=1 || exit "$rc"; }
else
  node "$HERE/csdl-check.js" --xsd "$@" || { rc=$?; [ "$rc" -eq 1 ] && status=1 || exit "$rc"; }
fi

if [ "$status" -eq 0 ]; then
  echo "check-metadata: OK - $# file(s) valid"
else
  echo "check-metadata: FAILED - see errors above"
fi
exit "$status"
