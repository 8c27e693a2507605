#!/usr/bin/env bash
# Re-record the sample traces in sample_traces/ with `tinyjail trace` (root + eBPF) and write each one's
# profile with `tinyjail profile`, then the README table.
# Usage: sudo tools/record_samples.sh [NAME...]    or    tools/record_samples.sh --table-only
# Every sample must come out lossless (dropped 0) and under 5 MB, or the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
tj=("$repo/.venv/bin/python" -m tinyjail)
out="$repo/sample_traces"
work=/tmp/tinyjail-samples  # fixed, so the recorded argv is the same on every re-recording
rm -rf "$work"; mkdir -p "$work"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
log() { printf 'record_samples: %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || [ "${1:-}" = --table-only ] || { log "needs root (eBPF tracing)"; exit 1; }
mkdir -p "$out"

# Inputs that do not depend on this machine's state.
cat >"$work/script.sql" <<'SQL'
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, n INTEGER);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000)
INSERT INTO t(name, n) SELECT printf('row-%d', x), x * 7 % 113 FROM c;
CREATE INDEX t_n ON t(n);
SELECT n, count(*) FROM t GROUP BY n ORDER BY count(*) DESC, n LIMIT 5;
VACUUM;
SQL
mkdir -p "$work/www" "$work/tree"
seq 1 20000 >"$work/www/numbers.txt"
cp -r /usr/share/doc/bash "$work/tree/bash-doc"

port=$("$repo/.venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

declare -A CMD=(
  [ls]="ls -la /usr"
  [python-imports]="/usr/bin/python3 -c 'import json, sqlite3, ssl'"
  [sqlite3]="sqlite3 $work/db.sqlite '.read $work/script.sql'"
  [curl]="curl -sS -o $work/numbers.out http://127.0.0.1:$port/numbers.txt"
  [tar]="tar czf $work/tree.tgz -C $work tree"
)
ORDER=(ls python-imports sqlite3 curl tar)
if [ "${1:-}" = --table-only ]; then ORDER=(); elif [ $# -gt 0 ]; then ORDER=("$@"); fi

for name in ${ORDER[@]+"${ORDER[@]}"}; do
  [ -n "${CMD[$name]:-}" ] || { log "unknown sample $name (known: ${!CMD[*]})"; exit 2; }
  if [ "$name" = curl ] && [ -z "$server_pid" ]; then
    /usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$port" >/dev/null 2>&1 &
    server_pid=$!
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
  fi
  log "$name: ${CMD[$name]}"
  rm -rf "${out:?}/$name" "$out/$name.json" "$work/db.sqlite"
  eval "set -- ${CMD[$name]}"
  (cd "$work" && "${tj[@]}" trace -o "$out/$name" -- "$@" >/dev/null)
  "${tj[@]}" profile "$out/$name" -o "$out/$name.json"
  size=$(du -sb "$out/$name" | cut -f1)
  [ "$size" -lt $((5 * 1024 * 1024)) ] || { log "$name: trace is $size bytes (limit 5 MB)"; exit 1; }
done

# The README table, from the traces themselves.
"$repo/.venv/bin/python" - "$out" <<'PY'
import json, shlex, sys
from pathlib import Path
from tinyjail.timeline import load

root = Path(sys.argv[1])
rows = []
for meta in sorted(root.glob("*/meta.json")):
    t = load(meta.parent)
    ev = t.events
    starts = [int(df["ts"].min()) for df in (ev, t.processes) if len(df)]
    ends = [int(df["ts"].max()) for df in (ev, t.processes) if len(df)]
    duration = (max(ends) - min(starts)) / 1e6 if starts else 0.0
    prof = json.loads((root / f"{meta.parent.name}.json").read_text())
    allowed = {n for r in prof["syscalls"] for n in r["names"]}
    narrowed = sorted({n for r in prof["syscalls"] if r.get("args") for n in r["names"]})
    procs = t.processes[t.processes["kind"].astype(str) == "exec"]["pid"].nunique()
    size = sum(f.stat().st_size for f in meta.parent.rglob("*") if f.is_file())
    rows.append(
        f"| `{meta.parent.name}` | `{shlex.join(t.meta['argv'])}` | {len(ev):,} | {ev['name'].nunique()} | "
        f"{procs} | {duration:.1f} ms | {t.dropped} | {size / 1024:.0f} KiB | {len(allowed)}"
        f"{' (' + ', '.join(narrowed) + ' narrowed)' if narrowed else ''} |"
    )
table = "\n".join([
    "| sample | command | events | unique syscalls | processes (exec) | duration | dropped | size | profile allows |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    *rows,
])
readme = root / "README.md"
text = readme.read_text() if readme.exists() else ""
begin, end = "<!-- samples:begin -->", "<!-- samples:end -->"
if begin in text and end in text:
    text = text[: text.index(begin) + len(begin)] + "\n" + table + "\n" + text[text.index(end):]
else:
    text += f"\n{begin}\n{table}\n{end}\n"
readme.write_text(text)
print(table)
PY
