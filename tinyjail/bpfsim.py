"""A classic-BPF interpreter for seccomp programs: what the kernel would return for one call.

`tinyjail.policy.evaluate` compiles a policy with libseccomp (the same library that
enforces it) and runs the exported program here, so the simulated verdict is the verdict of
the real filter, including libseccomp's own resolution of overlapping argument rules.
Only the instructions the kernel's seccomp checker accepts are implemented.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

SECCOMP_RET_ACTION_FULL = 0xFFFF0000
SECCOMP_RET_DATA = 0x0000FFFF

RET_ACTIONS: dict[int, str] = {
    0x80000000: "SCMP_ACT_KILL_PROCESS",
    0x00000000: "SCMP_ACT_KILL_THREAD",
    0x00030000: "SCMP_ACT_TRAP",
    0x00050000: "SCMP_ACT_ERRNO",
    0x7FC00000: "SCMP_ACT_NOTIFY",
    0x7FF00000: "SCMP_ACT_TRACE",
    0x7FFC0000: "SCMP_ACT_LOG",
    0x7FFF0000: "SCMP_ACT_ALLOW",
}
"""SECCOMP_RET_* (include/uapi/linux/seccomp.h) -> OCI action name."""

_MASK32 = 0xFFFFFFFF
_SCRATCH = 16   # BPF_MEMWORDS


class BpfError(ValueError):
    """The program is not a valid seccomp program (bad opcode, jump or load)."""


def seccomp_data(nr: int, arch: int, args: Sequence[int] = (), ip: int = 0) -> bytes:
    """``struct seccomp_data`` as the kernel lays it out (little endian x86)."""
    full = [(a & 0xFFFFFFFFFFFFFFFF) for a in list(args)[:6]] + [0] * (6 - min(len(args), 6))
    return struct.pack("<iIQ6Q", nr, arch & _MASK32, ip, *full)


def decode(ret: int) -> tuple[str, int]:
    """(OCI action, 16-bit data) of a seccomp return value; unknown actions act as KILL_PROCESS
    (what the kernel does)."""
    action = RET_ACTIONS.get(ret & SECCOMP_RET_ACTION_FULL, "SCMP_ACT_KILL_PROCESS")
    return action, ret & SECCOMP_RET_DATA


Program = tuple[tuple[int, int, int, int], ...]
"""Decoded ``struct sock_filter`` instructions: (code, jt, jf, k)."""


def parse(program: bytes) -> Program:
    """Decode a BPF program (array of ``struct sock_filter``) once, to run it many times."""
    if len(program) % 8 or not program:
        raise BpfError("program length is not a positive multiple of 8 bytes")
    return tuple(struct.unpack_from("<HBBI", program, off) for off in range(0, len(program), 8))


def run(program: bytes | Program, data: bytes) -> int:
    """Run a seccomp BPF ``program`` (bytes or `parse` result) on ``data``; returns the 32-bit
    return value."""
    insns = parse(program) if isinstance(program, bytes) else program
    a = x = 0
    mem = [0] * _SCRATCH
    pc = 0
    while pc < len(insns):
        code, jt, jf, k = insns[pc]
        cls = code & 0x07
        if cls == 0x00:      # BPF_LD
            mode = code & 0xE0
            if mode == 0x20:     # BPF_ABS, BPF_W
                if k % 4 or k + 4 > len(data):
                    raise BpfError(f"bad load offset {k} at {pc}")
                a = struct.unpack_from("<I", data, k)[0]
            elif mode == 0x00:   # BPF_IMM
                a = k
            elif mode == 0x60:   # BPF_MEM
                a = mem[k]
            elif mode == 0x80:   # BPF_LEN
                a = len(data)
            else:
                raise BpfError(f"unsupported load 0x{code:x} at {pc}")
        elif cls == 0x01:    # BPF_LDX
            mode = code & 0xE0
            if mode == 0x00:
                x = k
            elif mode == 0x60:
                x = mem[k]
            elif mode == 0x80:
                x = len(data)
            else:
                raise BpfError(f"unsupported ldx 0x{code:x} at {pc}")
        elif cls == 0x02:    # BPF_ST
            mem[k] = a
        elif cls == 0x03:    # BPF_STX
            mem[k] = x
        elif cls == 0x04:    # BPF_ALU
            operand = x if code & 0x08 else k
            op = code & 0xF0
            if op == 0x00:
                a = (a + operand) & _MASK32
            elif op == 0x10:
                a = (a - operand) & _MASK32
            elif op == 0x20:
                a = (a * operand) & _MASK32
            elif op == 0x30:
                if operand == 0:
                    return 0
                a = a // operand
            elif op == 0x40:
                a = a | operand
            elif op == 0x50:
                a = a & operand
            elif op == 0x60:
                a = (a << operand) & _MASK32 if operand < 32 else 0
            elif op == 0x70:
                a = a >> operand if operand < 32 else 0
            elif op == 0x80:
                a = (-a) & _MASK32
            elif op == 0xA0:
                a = a ^ operand
            else:
                raise BpfError(f"unsupported alu 0x{code:x} at {pc}")
        elif cls == 0x05:    # BPF_JMP
            op = code & 0xF0
            operand = x if code & 0x08 else k
            if op == 0x00:       # BPF_JA
                pc += k
            else:
                if op == 0x10:
                    taken = a == operand
                elif op == 0x20:
                    taken = a > operand
                elif op == 0x30:
                    taken = a >= operand
                elif op == 0x40:
                    taken = bool(a & operand)
                else:
                    raise BpfError(f"unsupported jump 0x{code:x} at {pc}")
                pc += jt if taken else jf
        elif cls == 0x06:    # BPF_RET
            return (a if code & 0x18 == 0x10 else k) & _MASK32
        elif cls == 0x07:    # BPF_MISC
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x
        pc += 1
    raise BpfError("program ran off its end without returning")


__all__ = ["RET_ACTIONS", "BpfError", "Program", "decode", "parse", "run", "seccomp_data"]
