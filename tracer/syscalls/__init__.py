"""The eBPF side of `tinyjail trace`: probe.bpf.c and the code that loads and drains it.

Kept next to its consumer and tests (one folder per eBPF program). Importing this package does
not import bcc; `loader.Probe` does when it is constructed.
"""
