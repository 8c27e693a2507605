#!/bin/sh
# The demo's bundled workload: a small command-line job touching files, a pipe and a child or two.
set -e
dir=${1:-$(mktemp -d)}
mkdir -p "$dir"
ls -la /usr/share > "$dir/listing.txt"
seq 1 20000 > "$dir/blob"
tar czf "$dir/blob.tgz" -C "$dir" blob listing.txt
tar tzf "$dir/blob.tgz" | sort | tr "\n" " "; echo
