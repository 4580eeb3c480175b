"""Run directories: layout, manifest, events, and discovery of every run."""

from tunelab.runs.run_dir import EVENTS, MANIFEST, RunDir, new_manifest, now_iso
from tunelab.runs.store import RunInfo, RunStore, effective_status, loss_points, read_run

__all__ = ["EVENTS", "MANIFEST", "RunDir", "RunInfo", "RunStore", "effective_status", "loss_points",
           "new_manifest", "now_iso", "read_run"]
