#!/usr/bin/env bash
# Installs everything tinysplit needs on Debian/Ubuntu, idempotently:
#   - apt: the Arm GNU toolchain with newlib, QEMU for the emulated boards, clang + its
#     runtime (libFuzzer, sanitizers) for the firmware fuzzers
#     (--no-install-recommends: with recommends the toolchain pulls in ~2.4 GB more)
#   - .venv: a Python >= 3.11 virtual environment with tinysplit installed editable + test extras
# A second run only checks and returns.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(make gcc libc6-dev gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang libclang-rt-14-dev ser2net)
missing=()
for pkg in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  missing+=(python3 python3-venv)
fi
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]} (apt)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
  # apt's progress goes to a log, shown only if it fails.
  if ! { $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
      --no-install-recommends "${missing[@]}"; } > /tmp/tinysplit-apt.log 2>&1; then
    tail -n 40 /tmp/tinysplit-apt.log
    echo "setup: apt-get failed (whole log: /tmp/tinysplit-apt.log)" >&2
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.tinysplit-installed
# an editable install of another checkout (a venv copied or linked from elsewhere) is redone
if [ -f "$stamp" ] && ! .venv/bin/python -c 'import pathlib, sys
from tinysplit.core.paths import source_root
sys.exit(source_root() != pathlib.Path.cwd().resolve())' 2>/dev/null; then
  rm -f "$stamp"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ]; then
  echo "setup: installing tinysplit and its dependencies into .venv (pip; log in .venv/pip.log)"
  # pip's and the build backend's chatter goes to a log, shown only if the install fails.
  if ! { .venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e '.[test]'; } \
      > .venv/pip.log 2>&1; then
    tail -n 40 .venv/pip.log
    echo "setup: pip failed (whole log: .venv/pip.log)" >&2
    exit 1
  fi
  touch "$stamp"
fi
echo "setup: ready ($(.venv/bin/python --version), $(arm-none-eabi-gcc --version | head -n1), $(qemu-system-arm --version | head -n1))"
