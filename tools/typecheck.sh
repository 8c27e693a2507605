#!/usr/bin/env bash
# mypy over the package as it installs: tracer/, enforce/, dashboard/ are tinyjail.* subpackages
# through setuptools' package-dir mapping, which mypy cannot follow. Build a symlink view with the
# installed layout in a temp dir and check that.
set -euo pipefail
cd "$(dirname "$0")/.."
view=$(mktemp -d)
trap 'rm -rf "$view"' EXIT
mkdir -p "$view/tinyjail"
for f in tinyjail/*; do ln -s "$PWD/$f" "$view/tinyjail/"; done
for sub in tracer enforce dashboard; do ln -s "$PWD/$sub" "$view/tinyjail/$sub"; done
cd "$view"
exec "$OLDPWD/.venv/bin/mypy" --config-file "$OLDPWD/pyproject.toml" -p tinyjail "$@"
