"""Component ids of the dashboard, in one place so layouts, callbacks and browser tests agree."""

from __future__ import annotations

URL = "url"
TRACE = "trace-select"
TABS = "view-tabs"
VIEW = "view-body"
SYSCALL = "selected-syscall"  # dcc.Store: the syscall the call-sites view shows
BANNER = "trace-banner"

# Overview
OVERVIEW_CARDS = "overview-cards"
OVERVIEW_TOP = "overview-top-syscalls"
OVERVIEW_GROUPS = "overview-groups"
CARD_DROPS = "card-dropped"

# Seen vs missed
SEEN_TABLE = "seen-table"
SEEN_SUMMARY = "seen-summary"

# Timeline
TIMELINE_GRAPH = "timeline-graph"
TIMELINE_INFO = "timeline-info"
TIMELINE_SELECTION = "timeline-selection"

# Call sites
CALLSITES_SYSCALL = "callsites-syscall"
CALLSITES_BODY = "callsites-body"
CALLSITES_TABLE = "callsites-table"
CALLSITES_TREE = "callsites-tree"

# Policy
POLICY_GROUPS = "policy-groups"
POLICY_SYSCALLS = "policy-syscalls"
POLICY_OPTIONS = "policy-options"
POLICY_JSON = "policy-json"
POLICY_COUNT = "policy-count"
POLICY_DOWNLOAD_BUTTON = "policy-download-button"
POLICY_DOWNLOAD = "policy-download"

# Compare
COMPARE_A = "compare-a"
COMPARE_B = "compare-b"
COMPARE_BODY = "compare-body"
COMPARE_TABLE = "compare-table"
COMPARE_GRAPH = "compare-graph"

VIEWS: dict[str, str] = {
    "overview": "Overview",
    "seen": "Seen vs missed",
    "timeline": "Timeline",
    "callsites": "Call sites",
    "policy": "Policy",
    "compare": "Compare",
}
"""Tab value -> tab label, in display order."""
