#!/usr/bin/env bash
# The whole test suite: setup (idempotent), lint, type check, generated-code check, pytest.
# Pass extra pytest arguments through, e.g. `bash scripts/test.sh -k protocol`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check core codegen host tests scripts
echo "== mypy"
bash scripts/typecheck.sh
echo "== pytest"
.venv/bin/python -m pytest "$@"
