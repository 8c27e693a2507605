"""The few map operations the recorder needs, by map fd (bcc-compiled or cached program alike).

libbcc's ``bpf_lookup_elem`` / ``bpf_update_elem`` / ``bpf_get_next_key`` are thin wrappers of
bpf(2); keys and values are raw bytes here, sized from the map's definition.
"""

from __future__ import annotations

import ctypes as ct
from collections.abc import Iterator
from functools import cache

from tinyjail.tracer.syscalls.compiled import MapSpec

BPF_MAP_TYPE_PERCPU_HASH = 5
BPF_MAP_TYPE_PERCPU_ARRAY = 6


@cache
def possible_cpus() -> int:
    """How many values a per-CPU map returns per key (the kernel's possible CPUs, as bcc reads them)."""
    from bcc.utils import get_possible_cpus

    return len(get_possible_cpus())


class Map:
    """One map: ``get``/``set`` of raw bytes, iterating gives the keys; per-CPU maps return every
    CPU's value."""

    def __init__(self, fd: int, spec: MapSpec) -> None:
        from bcc import lib

        self._lib = lib
        self.fd = fd
        self.spec = spec
        self.percpu = spec.type in (BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY)
        stride = (spec.value_size + 7) & ~7
        self._value_len = stride * possible_cpus() if self.percpu else spec.value_size
        self._stride = stride

    def get(self, key: bytes) -> bytes | None:
        """The value (for a per-CPU map: every CPU's, ``value_size`` rounded to 8 bytes apart)."""
        k = ct.create_string_buffer(key, self.spec.key_size)
        v = ct.create_string_buffer(self._value_len)
        if self._lib.bpf_lookup_elem(self.fd, k, v) < 0:
            return None
        return v.raw

    def set(self, key: bytes, value: bytes) -> None:
        k = ct.create_string_buffer(key, self.spec.key_size)
        v = ct.create_string_buffer(value, self._value_len)
        if self._lib.bpf_update_elem(self.fd, k, v, 0) < 0:
            raise OSError(ct.get_errno(), f"cannot update map {self.spec.name}")

    def per_cpu(self, key: bytes) -> list[bytes]:
        """A per-CPU map's values for ``key``, one per possible CPU."""
        raw = self.get(key) or b""
        return [raw[i:i + self.spec.value_size] for i in range(0, len(raw), self._stride)]

    def __iter__(self) -> Iterator[bytes]:
        """Every key (a hash map's, in the kernel's order)."""
        cur = ct.create_string_buffer(self.spec.key_size)
        nxt = ct.create_string_buffer(self.spec.key_size)
        first = True
        while self._lib.bpf_get_next_key(self.fd, None if first else cur, nxt) == 0:
            first = False
            yield nxt.raw
            ct.memmove(cur, nxt, self.spec.key_size)
