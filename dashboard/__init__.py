"""tinyjail.dashboard: the Dash web UI over traces and policies."""
