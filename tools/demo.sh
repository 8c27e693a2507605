#!/usr/bin/env bash
# `make demo`: the whole loop on a bundled workload — trace it, write its profile, run it under that
# profile (enforce), explain one syscall, then serve the dashboard on the new trace and sample_traces/.
# DEMO_SERVE=0 skips the dashboard (non-interactive use); DEMO_OUT sets where outputs go (default out/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
out=${DEMO_OUT:-out/demo}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The bundled workload: list a directory, write, compress and checksum a file — a small CLI tool's life.
workload=(sh tools/demo_workload.sh "$work")

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. trace: record every syscall of the workload and write its profile"
tinyjail trace -o "$out/trace" --force --profile "$out/profile.json" -- "${workload[@]}"

step "2. the profile (groups collapsed, dangerous syscalls marked)"
tinyjail policy show "$out/profile.json" | head -n 40

step "3. run: the same workload under its own profile, enforce mode"
tinyjail run --policy "$out/profile.json" --mode enforce -- "${workload[@]}"

step "4. run: a command the profile does not cover is stopped (complain mode lists what it would deny)"
tinyjail run --policy "$out/profile.json" --mode complain -- sh -c 'mkdir "$1/x" && rmdir "$1/x"; hostname' _ "$work" || true

step "5. explain: where and why openat is called"
tinyjail explain openat --trace "$out/trace" --policy "$out/profile.json" | head -n 40

if [ "${DEMO_SERVE:-1}" != 0 ]; then
  step "6. dashboard on http://127.0.0.1:8050 (Ctrl-C to stop)"
  traces=("$out/trace")
  for t in sample_traces/*/; do [ -f "$t/meta.json" ] && traces+=("${t%/}"); done
  exec tinyjail dashboard "${traces[@]}" --no-browser
fi
