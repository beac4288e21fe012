#!/usr/bin/env bash
# Fuzzes the C frame decoder (fuzz_frame) and the client's message handlers (fuzz_client) with
# libFuzzer, both at once, for a while:
#
#   scripts/fuzz.sh [SECONDS] [--update-corpus]      (default 60 s)
#
# Needs clang with libFuzzer (Debian: clang, libclang-rt-14-dev). MODEL_DIR=<export> picks the
# model fuzz_client is built with (default: digits-mlp exported once into build/fuzz/model with
# --private, noise, --labels client and --wire int4, so that the sealed-state, noise, head and
# coded-wire paths are fuzzed too).
# Starts from the kept corpus in firmware/fuzz/corpus/<harness>/ (the work copy and any crash
# inputs are in build/fuzz/); --update-corpus merges what added coverage back into it.
# Prints one line per harness, "fuzz_<name>: <execs> execs in <s> s, <n> crashes", and exits 1
# if either found one (ASan, UBSan, or a failed check in the harness).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
update=0
if [ "${2:-}" = "--update-corpus" ]; then update=1; fi
out=build/fuzz
model=${MODEL_DIR:-$out/model}
mkdir -p "$out"
# an export by an older tinysplit (before pairing keys) no longer builds: export it again
if [ ! -f "$model/model_data.c" ] || ! grep -q "TS_MODEL_WIRE 12u" "$model/model_data.h"; then
  echo "fuzz: exporting digits-mlp into $model"
  .venv/bin/python -c "from tinysplit.codegen.export import export_client; \
from tinysplit.codegen.export import Noise; \
export_client('digits-mlp', None, '$model', seed=0, private=True, noise=Noise('laplace', 0.05), \
labels='client', wire='int4')" \
  >/dev/null
fi
# fuzz_client is built for one model: rebuild it when MODEL_DIR changes.
if [ "$(cat "$out/.model" 2>/dev/null)" != "$model" ]; then rm -f "$out/fuzz_client"; fi
echo "$model" > "$out/.model"
make -s -f firmware/fuzz/fuzz.mk fuzz MODEL_DIR="$model" FUZZ_DIR="$out"

run() {  # run NAME MAX_LEN: one harness in the background, its log in $out/NAME.log
  local name=$1 max_len=$2
  local work=$out/corpus-$name crashes=$out/crashes-$name
  mkdir -p "$work" "$crashes"
  cp -n firmware/fuzz/corpus/"$name"/* "$work"/ 2>/dev/null || true
  "$out/fuzz_$name" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$crashes/" "$work" >"$out/$name.log" 2>&1 &
}
run frame 4096
run client 8192
status=0
wait -n || status=1
wait -n || status=1

for name in frame client; do
  log=$out/$name.log
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n1)
  crashes=$(find "$out/crashes-$name" -type f | wc -l)
  if grep -qE "^==[0-9]+==ERROR|runtime error:|deadly signal" "$log"; then
    crashes=$((crashes > 0 ? crashes : 1))
  fi
  echo "fuzz_$name: ${execs:-0} execs in ${secs:-?} s, $crashes crashes"
  if [ "$crashes" -gt 0 ]; then
    status=1
    echo "  see $log and $out/crashes-$name/ (reproduce: $out/fuzz_$name <input>)"
  fi
  if [ "$update" = 1 ]; then
    "$out/fuzz_$name" -merge=1 firmware/fuzz/corpus/"$name" "$out/corpus-$name" >/dev/null 2>&1
  fi
done
exit $status
