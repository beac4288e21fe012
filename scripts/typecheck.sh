#!/usr/bin/env bash
# mypy --strict on the Python packages. mypy does not follow the import hook of an editable
# install with a package-dir mapping, so it gets a tree of links with the import layout
# (tinysplit/host -> host/, tinysplit/codegen -> codegen/).
set -euo pipefail
cd "$(dirname "$0")/.."
tree=build/typecheck
mkdir -p "$tree/tinysplit"
ln -sfn ../../../host "$tree/tinysplit/host"
ln -sfn ../../../codegen "$tree/tinysplit/codegen"
MYPYPATH=$tree .venv/bin/mypy -p tinysplit.host -p tinysplit.codegen
