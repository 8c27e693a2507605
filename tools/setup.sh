#!/usr/bin/env bash
# Idempotent machine + venv setup for tinyjail (Debian 12, run as root).
# Installs Debian packages, a kernel-headers tree for bcc, tracefs/debugfs mounts,
# and .venv with the project in editable mode. A second run does only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  libseccomp2 libseccomp-dev seccomp            # libseccomp for pyseccomp, scmp_sys_resolver
  python3-venv python3-dev gcc make             # the venv and the test helpers written in C
  python3-bpfcc libbpfcc bpfcc-tools            # bcc (Python module for the system python)
  linux-headers-amd64                           # headers tree for bcc when none matches the kernel
  runc busybox-static                           # OCI runtime tests
  chromium chromium-driver fonts-dejavu-core    # dashboard browser tests (a font for screenshots)
  strace bubblewrap                             # benchmark baselines
  sqlite3 curl xz-utils                         # sample workloads
  manpages-dev                                  # man2 NAME lines for tools/gen_descriptions.py
)

log() { printf 'setup: %s\n' "$*" >&2; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]} (run 'make setup' as root)"; exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# bcc needs a kernel headers tree at /lib/modules/$(uname -r)/build.
KDIR=/lib/modules/$(uname -r)
if [ ! -e "$KDIR/build/include" ] && [ "$(id -u)" -eq 0 ]; then
  hdr=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1)
  common=$(ls -d /usr/src/linux-headers-*-common 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$hdr" ]; then
    mkdir -p "$KDIR"
    ln -sfn "$hdr" "$KDIR/build"
    ln -sfn "${common:-$hdr}" "$KDIR/source"
    log "linked $KDIR/build -> $hdr and $KDIR/source -> ${common:-$hdr} (no headers match $(uname -r))"
  else
    log "warning: no /usr/src/linux-headers-*-amd64 tree; bcc will not compile"
  fi
fi

if [ "$(id -u)" -eq 0 ]; then
  if [ ! -d /sys/kernel/tracing/events ]; then
    mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null && log "mounted tracefs on /sys/kernel/tracing" || true
  fi
  if [ ! -d /sys/kernel/debug/tracing ] && [ -d /sys/kernel/debug ]; then
    mountpoint -q /sys/kernel/debug || { mount -t debugfs nodev /sys/kernel/debug 2>/dev/null && log "mounted debugfs on /sys/kernel/debug"; } || true
  fi
fi

# The venv: Debian's python (bcc's Python module is built for it), project editable.
PY=/usr/bin/python3
stamp=.venv/.tinyjail-setup
want=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $PY"
  $PY -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing tinyjail (editable) and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[all,dev]'
  echo "$want" > "$stamp"
fi
# bcc: Debian ships it only for the system python; link the package, don't copy it.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ -d /usr/lib/python3/dist-packages/bcc ] && [ ! -e "$site/bcc" ]; then
  ln -sfn /usr/lib/python3/dist-packages/bcc "$site/bcc"
  log "linked bcc into .venv from /usr/lib/python3/dist-packages/bcc"
fi
.venv/bin/python -c 'import tinyjail' || { log "tinyjail does not import from .venv"; exit 1; }
log "ready: $(.venv/bin/tinyjail --version)"
