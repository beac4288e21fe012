#!/usr/bin/env bash
# mypy --strict on the Python packages. mypy does not follow the import hook of an editable
# install with a package-dir mapping, so it gets a tree of links with the import layout
# (tinysplit/core -> core/, tinysplit/codegen -> codegen/, tinysplit/host -> host/).
set -euo pipefail
cd "$(dirname "$0")/.."
tree=build/typecheck
mkdir -p "$tree/tinysplit"
ln -sfn ../../../host "$tree/tinysplit/host"
ln -sfn ../../../codegen "$tree/tinysplit/codegen"
ln -sfn ../../../core "$tree/tinysplit/core"
MYPYPATH=$tree .venv/bin/mypy -p tinysplit.core -p tinysplit.codegen -p tinysplit.host
