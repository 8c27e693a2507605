"""A bcc-compiled program kept on disk and loaded again without clang.

bcc compiles probe.bpf.c with clang/LLVM at every start: ~0.5 s of the ~0.6 s it takes to be
recording (notes/bench-trace.md). What comes out of that compile for a given program text,
bcc version and kernel is always the same: a few BPF functions whose map references are
``ld_imm64`` instructions holding the fds of maps bcc created. So after bcc has compiled
once, tinyjail keeps the instructions and the map definitions; later runs create the same
maps, patch their fds into the instructions and hand them to the kernel's verifier with
libbcc's own loader functions. The kernel verifies the program as it would verify bcc's.

The cache is written only by root, in a root-only directory (``/var/cache/tinyjail/bpf``,
mode 0700; ``TINYJAIL_BPF_CACHE=DIR`` puts it elsewhere, ``TINYJAIL_BPF_CACHE=0`` turns it
off). An entry that is not a root-owned regular file in a directory only root can write to,
or that the kernel refuses, is ignored and rebuilt by bcc.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes as ct
import hashlib
import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE_DIR = Path("/var/cache/tinyjail/bpf")
FORMAT = 1
BPF_PROG_TYPE_RAW_TRACEPOINT = 17
RAW_PREFIX = "raw_tracepoint__"
LD_IMM64 = 0x18
BPF_PSEUDO_MAP_FD = 1
INSN = 8
MAX_ENTRY_BYTES = 4 << 20


@dataclass(frozen=True)
class MapSpec:
    """One map as bcc created it."""

    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int


@dataclass(frozen=True)
class CompiledProgram:
    """What bcc's compile produced: map definitions and each function's instructions, whose
    ``ld_imm64`` map references hold an index into ``maps`` instead of an fd."""

    maps: tuple[MapSpec, ...]
    functions: tuple[tuple[str, bytes], ...]
    license: str

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT,
            "license": self.license,
            "maps": [m.__dict__ for m in self.maps],
            "functions": [[n, base64.b64encode(code).decode()] for n, code in self.functions],
        })

    @classmethod
    def from_json(cls, text: str) -> CompiledProgram:
        d = json.loads(text)
        if d.get("format") != FORMAT:
            raise ValueError(f"cache format {d.get('format')!r}")
        maps = tuple(MapSpec(**m) for m in d["maps"])
        funcs = tuple((str(n), base64.b64decode(code)) for n, code in d["functions"])
        for name, code in funcs:
            if not name.startswith(RAW_PREFIX) or len(code) % INSN:
                raise ValueError(f"function {name!r}")
        return cls(maps, funcs, str(d["license"]))


def cache_key(text: str, cflags: list[str]) -> str:
    """Program text, compiler flags, bcc's version and the running kernel: what the bytes depend on."""
    from bcc import __version__ as bcc_version

    u = os.uname()
    build = os.path.realpath(f"/lib/modules/{u.release}/build")
    h = hashlib.sha256()
    for part in (str(FORMAT), text, "\0".join(cflags), bcc_version, u.release, u.version, u.machine, build):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def cache_dir() -> Path | None:
    """Where compiled programs are kept; None when caching is off (not root, or turned off)."""
    setting = os.environ.get("TINYJAIL_BPF_CACHE", "")
    if os.geteuid() != 0 or setting.lower() in ("0", "off", "no"):
        return None
    return Path(setting) if setting else CACHE_DIR


def _root_only(st: os.stat_result) -> bool:
    return st.st_uid == 0 and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _trusted(path: Path) -> bool:
    """A root-owned regular file, writable by root only, in a directory only root can write to."""
    try:
        st = path.lstat()
        return (_root_only(path.parent.lstat()) and _root_only(st) and stat.S_ISREG(st.st_mode)
                and st.st_size <= MAX_ENTRY_BYTES)
    except OSError:
        return False


def read_cached(key: str) -> CompiledProgram | None:
    """The cached program for ``key``, or None (caching off; entry absent, untrusted or unreadable)."""
    where = cache_dir()
    if where is None:
        return None
    path = where / f"{key}.json"
    if not _trusted(path):
        return None
    try:
        return CompiledProgram.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_cached(key: str, prog: CompiledProgram) -> bool:
    """Store ``prog`` atomically; a cache that cannot be written is only slower, never an error."""
    where = cache_dir()
    if where is None:
        return False
    try:
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _root_only(where.lstat()) or not stat.S_ISDIR(where.lstat().st_mode):
            return False        # never put a program where someone else could swap it
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".tmp-")
    except OSError:
        return False
    try:
        with os.fdopen(fd, "w") as f:
            f.write(prog.to_json())
        os.replace(tmp, where / f"{key}.json")
        return True
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False


def _libbcc() -> Any:
    """libbcc with the prototypes bcc's Python module leaves undeclared (ctypes would cut
    pointers and sizes to int)."""
    from bcc import lib

    size, mod = ct.c_size_t, ct.c_void_p
    for fn, res, args in (
        ("bpf_num_tables", size, [mod]),
        ("bpf_table_name", ct.c_char_p, [mod, size]),
        ("bpf_table_fd_id", ct.c_int, [mod, size]),
        ("bpf_table_key_size_id", size, [mod, size]),
        ("bpf_table_leaf_size_id", size, [mod, size]),
        ("bpf_table_type_id", ct.c_int, [mod, size]),
        ("bpf_table_max_entries_id", size, [mod, size]),
        ("bpf_table_flags_id", ct.c_int, [mod, size]),
        ("bpf_obj_get_info", ct.c_int, [ct.c_int, ct.c_void_p, ct.POINTER(ct.c_uint32)]),
        ("bcc_create_map", ct.c_int, [ct.c_int, ct.c_char_p, ct.c_int, ct.c_int, ct.c_int, ct.c_int]),
        ("bcc_prog_load", ct.c_int, [ct.c_int, ct.c_char_p, ct.c_void_p, ct.c_int, ct.c_char_p, ct.c_uint,
                                     ct.c_int, ct.c_char_p, ct.c_uint]),
    ):
        f = getattr(lib, fn)
        f.restype, f.argtypes = res, args
    return lib


def map_specs(bpf: Any) -> tuple[tuple[MapSpec, ...], dict[str, int]]:
    """The maps bcc created for a compiled ``bcc.BPF``, and their fds by name."""
    lib = _libbcc()
    module = bpf.module
    specs = []
    fds = {}
    for i in range(lib.bpf_num_tables(module)):
        name = lib.bpf_table_name(module, i).decode()
        specs.append(MapSpec(
            name=name,
            type=lib.bpf_table_type_id(module, i),
            key_size=lib.bpf_table_key_size_id(module, i),
            value_size=lib.bpf_table_leaf_size_id(module, i),
            max_entries=lib.bpf_table_max_entries_id(module, i),
            flags=lib.bpf_table_flags_id(module, i),
        ))
        fds[name] = lib.bpf_table_fd_id(module, i)
    return tuple(specs), fds


def capture(bpf: Any) -> CompiledProgram | None:
    """Read the maps and instructions out of a compiled ``bcc.BPF``; None when the program is
    not cacheable (anything but raw tracepoints, or a map reference this loader cannot patch)."""
    lib = _libbcc()

    module = bpf.module
    specs, fds = map_specs(bpf)
    index_of_fd = {fds[m.name]: i for i, m in enumerate(specs)}
    funcs = []
    for i in range(lib.bpf_num_functions(module)):
        name = lib.bpf_function_name(module, i)
        if not name.startswith(RAW_PREFIX.encode()):
            return None
        size = lib.bpf_function_size(module, name)
        code = bytearray(ct.string_at(lib.bpf_function_start(module, name), size))
        if not _relocate(code, index_of_fd):
            return None
        funcs.append((name.decode(), bytes(code)))
    return CompiledProgram(specs, tuple(funcs), lib.bpf_module_license(module).decode())


def _map_refs(code: bytes | bytearray) -> list[int]:
    """Byte offsets of the ``ld_imm64`` instructions that load a map by fd."""
    out = []
    i = 0
    while i + INSN <= len(code):
        if code[i] == LD_IMM64:
            if (code[i + 1] >> 4) == BPF_PSEUDO_MAP_FD:
                out.append(i)
            i += 2 * INSN
        else:
            i += INSN
    return out


def _relocate(code: bytearray, table: dict[int, int]) -> bool:
    """Rewrite each map reference's imm through ``table`` (fd -> index, or index -> fd)."""
    for off in _map_refs(code):
        old = int.from_bytes(code[off + 4:off + 8], "little", signed=True)
        if old not in table:
            return False
        code[off + 4:off + 8] = table[old].to_bytes(4, "little", signed=True)
    return True


def prog_info(prog_fd: int, member: str) -> int | None:
    """A u64 member of the kernel's ``struct bpf_prog_info`` for a program (offset from the
    kernel's BTF), e.g. ``recursion_misses``: runs skipped because the program was already
    running on that CPU. None if the kernel does not say."""
    from tinyjail.tracer.syscalls.btf import offsets

    where = offsets({"m": ("bpf_prog_info", member)})
    if where is None:
        return None
    size = where["m"] + 8
    buf = ct.create_string_buffer(size)
    length = ct.c_uint32(size)
    if _libbcc().bpf_obj_get_info(prog_fd, buf, ct.byref(length)) != 0 or length.value < size:
        return None
    return int.from_bytes(buf.raw[where["m"]:size], "little")


class LoadedProgram:
    """A cached program in the kernel: its maps created, its functions verified and attached."""

    def __init__(self, prog: CompiledProgram) -> None:
        self._lib = _libbcc()
        self.map_fds: dict[str, int] = {}
        self._fds: list[int] = []
        self._links: list[int] = []
        self.prog_fds: list[int] = []
        try:
            self._load(prog)
        except BaseException:
            self.close()
            raise

    def _load(self, prog: CompiledProgram) -> None:
        lib = self._lib
        create, load = lib.bcc_create_map, lib.bcc_prog_load
        fd_of_index: dict[int, int] = {}
        for i, m in enumerate(prog.maps):
            fd = create(m.type, m.name.encode()[:15], m.key_size, m.value_size, m.max_entries, m.flags)
            if fd < 0:
                raise OSError(ct.get_errno(), f"cannot create map {m.name}")
            self._fds.append(fd)
            self.map_fds[m.name] = fd
            fd_of_index[i] = fd
        for name, code in prog.functions:
            patched = bytearray(code)
            if not _relocate(patched, fd_of_index):
                raise ValueError(f"{name}: a map reference out of range")
            buf = (ct.c_char * len(patched)).from_buffer(patched)
            pfd = load(BPF_PROG_TYPE_RAW_TRACEPOINT, name.encode()[:15], ct.addressof(buf), len(patched),
                       prog.license.encode(), 0, 0, None, 0)
            if pfd < 0:
                raise OSError(ct.get_errno(), f"the kernel refused {name}")
            self._fds.append(pfd)
            self.prog_fds.append(pfd)
            tp = name[len(RAW_PREFIX):].encode()
            link = lib.bpf_attach_raw_tracepoint(pfd, tp)
            if link < 0:
                raise OSError(ct.get_errno(), f"cannot attach {name}")
            self._links.append(link)

    def detach(self) -> None:
        """Stop the programs (closing the raw tracepoint links); the maps stay readable."""
        for fd in self._links:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._links.clear()

    def close(self) -> None:
        """Detach and free the programs and maps."""
        self.detach()
        for fd in reversed(self._fds):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
