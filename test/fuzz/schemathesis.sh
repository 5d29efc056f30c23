#!/usr/bin/env bash
# schemathesis (PyPI) against the /openapi.json a running Lagoon node serves: every operation, generated
# requests valid and invalid, checked for server errors (schemathesis_hooks.py), undocumented status codes,
# content types, response headers, response bodies against their schemas, and invalid input that was accepted.
# Bounded (LAGOON_SCHEMATHESIS_EXAMPLES per operation) and deterministic (fixed seed), for CI; exits non-zero on
# any failure. test/integration/schemathesis.test.ts starts a node and runs this.
#
#   test/fuzz/schemathesis.sh http://127.0.0.1:PORT [more schemathesis run options]
#   test/fuzz/schemathesis.sh --install        # only create the cached venv
#
# Only http://127.0.0.1:PORT is accepted: this sends thousands of arbitrary writes.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
version=4.32.5
venv="${LAGOON_SCHEMATHESIS_VENV:-$root/node_modules/.cache/lagoon/venv}"
python="${PYTHON:-python3}"

install() {
  if "$venv/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $version"; then return 0; fi
  echo "== installing schemathesis $version (PyPI) into $venv"
  command -v "$python" >/dev/null || { echo "no $python: install Python 3.9+ (with its venv module)" >&2; exit 1; }
  rm -rf "$venv"
  "$python" -m venv "$venv" || { echo "$python -m venv failed: install the venv module (Debian: python3-venv)" >&2; exit 1; }
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$version"
  "$venv/bin/schemathesis" --version
}

if [ "${1:-}" = "--install" ]; then
  install
  exit 0
fi
base="${1:?usage: $0 http://127.0.0.1:PORT [schemathesis run options] | --install}"
shift
base="${base%/}"
if ! [[ "$base" =~ ^http://127\.0\.0\.1:[0-9]{1,5}$ ]]; then
  echo "refusing to fuzz $base: only http://127.0.0.1:PORT (a node on this machine) is allowed" >&2
  exit 2
fi
install
# schemathesis keeps a cache of earlier failures (.schemathesis/) in its working directory and replays them first:
# a fresh one per run keeps runs deterministic and the repository clean.
work="$root/node_modules/.cache/lagoon/schemathesis-run"
rm -rf "$work"
mkdir -p "$work"
cd "$work"
export SCHEMATHESIS_HOOKS=schemathesis_hooks
export PYTHONPATH="$root/test/fuzz${PYTHONPATH:+:$PYTHONPATH}"
exec "$venv/bin/schemathesis" run "$base/openapi.json" \
  --url "$base" \
  --checks lagoon_problem_details,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection \
  --phases examples,coverage,fuzzing \
  --max-examples "${LAGOON_SCHEMATHESIS_EXAMPLES:-40}" \
  --seed "${LAGOON_SCHEMATHESIS_SEED:-1}" \
  --generation-deterministic \
  --workers 1 \
  --max-redirects 0 \
  --request-timeout 90 \
  --max-failures 50 \
  --no-color \
  --output-truncate false \
  "$@"
