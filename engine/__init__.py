"""The delivery engine: audiences, guards, planning, rendering, dispatch, reconciliation, outcomes."""
