#!/usr/bin/env bash
# The whole test suite: setup (idempotent), lint, architecture contract, type check, pytest.
# Pass extra pytest arguments through, e.g. `bash scripts/test.sh -k protocol`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check core codegen host tests scripts
echo "== architecture (import-linter: host -> codegen -> core)"
.venv/bin/lint-imports --no-cache | grep -E "KEPT|BROKEN|not allowed|->"
echo "== mypy"
bash scripts/typecheck.sh
echo "== pytest"
.venv/bin/python -m pytest "$@"
