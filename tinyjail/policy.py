"""The OCI runtime-spec ``linux.seccomp`` policy model (the ``db.c`` of tinyjail): one import
for everything a caller needs.

A `Policy` is the JSON object as written, kept faithfully so it saves back unchanged
(``@group`` names stay as written, symbolic argument values stay symbolic, moby's
``includes``/``excludes``/``archMap`` are kept). `effective_rules` is the compiled view:
groups expanded, moby conditions evaluated for this machine, names the architecture lacks
dropped. `evaluate` is a pure simulator of what the compiled filter decides, following
libseccomp's rules (see notes/policy-format.md, "Precedence"). `to_portable` (or
``save(..., portable=True)``) gives the same filter as plain runtime-spec JSON for runc,
podman and Docker.

Validation is strict and complete: `from_dict` collects every problem before raising one
`PolicyError` whose ``problems`` are lines ``FILE: $.json.path: message``.

One concept per module, all re-exported here:

- `tinyjail.policy_model`: dataclasses, the format's vocabulary, precedence of actions;
- `tinyjail.policy_read`: load/loads/from_dict and validation;
- `tinyjail.policy_write`: to_dict/dumps/save;
- `tinyjail.policy_portable`: the portable form;
- `tinyjail.policy_moby`: moby conditions and archMap;
- `tinyjail.policy_compile`: effective_rules, evaluate, allowed, unknown_to_libseccomp;
- `tinyjail.policy_merge`: merge and diff.
"""

from __future__ import annotations

from tinyjail.errors import PolicyError, UsageError
from tinyjail.policy_compile import Unknown, allowed, effective_rules, evaluate, unknown_to_libseccomp
from tinyjail.policy_merge import PolicyDiff, diff, merge, treatment
from tinyjail.policy_moby import (
    GO_ARCH,
    MOBY_ARCHES,
    conditions_hold,
    effective_architectures,
    running_kernel,
)
from tinyjail.policy_model import (
    ACTIONS,
    ARG_KEYS,
    CONDITION_KEYS,
    DEFAULT_ERRNO,
    DENY_ACTIONS,
    FLAGS,
    KNOWN_ARCHES,
    MAX_ERRNO,
    OPS,
    PERMIT_ACTIONS,
    RET_DATA_ACTIONS,
    RULE_KEYS,
    SPEC_ARCHES,
    TOP_KEYS,
    UINT64_MAX,
    Arg,
    Policy,
    Rule,
    SyscallRule,
    ret_errno,
    show_action,
    stricter,
    strictness,
)
from tinyjail.policy_portable import is_portable, to_portable
from tinyjail.policy_read import MAX_FILE_BYTES, from_dict, is_valid_name, load, loads, notes
from tinyjail.policy_write import dumps, save, to_dict, validate

__all__ = [
    "ACTIONS",
    "ARG_KEYS",
    "CONDITION_KEYS",
    "DEFAULT_ERRNO",
    "DENY_ACTIONS",
    "FLAGS",
    "GO_ARCH",
    "KNOWN_ARCHES",
    "MAX_ERRNO",
    "MAX_FILE_BYTES",
    "MOBY_ARCHES",
    "OPS",
    "PERMIT_ACTIONS",
    "RET_DATA_ACTIONS",
    "RULE_KEYS",
    "SPEC_ARCHES",
    "TOP_KEYS",
    "UINT64_MAX",
    "Arg",
    "Policy",
    "PolicyDiff",
    "PolicyError",
    "Rule",
    "SyscallRule",
    "Unknown",
    "UsageError",
    "allowed",
    "conditions_hold",
    "diff",
    "dumps",
    "effective_architectures",
    "effective_rules",
    "evaluate",
    "from_dict",
    "is_portable",
    "is_valid_name",
    "load",
    "loads",
    "merge",
    "notes",
    "ret_errno",
    "running_kernel",
    "save",
    "show_action",
    "stricter",
    "strictness",
    "to_dict",
    "to_portable",
    "treatment",
    "unknown_to_libseccomp",
    "validate",
]
