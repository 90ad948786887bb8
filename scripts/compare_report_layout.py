"""Two JSON reports of the same run command (before and after a change): the same keys in the same order
everywhere, and the same values wherever nothing was timed (timings, memory, ids and times are compared by
their keys only). Prints each difference, or that there is none.

    python scripts/compare_report_layout.py before.json after.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

TIMED = {"timing_results", "latency_samples_s", "relative_speed", "end_to_end", "cold_start", "batch_sweep",
         "memory", "load_time_s", "accuracy_pass", "timestamp", "run_id", "threshold_verdicts",
         "machine_speed_index", "duration_s", "git_commit", "host", "gpu_memory", "host_audit",
         "comparison_analysis", "notes", "memory_context"}


def differences(before: Any, after: Any, path: str = "", values: bool = True) -> list[str]:
    """Where the two differ: keys (and their order) always, values only outside timed figures."""
    if isinstance(before, dict) and isinstance(after, dict):
        found = [] if list(before) == list(after) else [f"{path}: keys {sorted(set(before) ^ set(after))} "
                                                        f"(same set, other order: {sorted(before) == sorted(after)})"]
        for key in before.keys() & after.keys():
            found += differences(before[key], after[key], f"{path}.{key}", values and key not in TIMED)
        return found
    if isinstance(before, list) and isinstance(after, list) and not values:
        return [line for i, (b, a) in enumerate(zip(before, after, strict=False)) if isinstance(b, dict)
                for line in differences(b, a, f"{path}[{i}]", False)]
    return [f"{path}: {str(before)[:80]} != {str(after)[:80]}"] if values and before != after else []


if __name__ == "__main__":
    first, second = (json.loads(Path(name).read_text()) for name in sys.argv[1:3])
    print("\n".join(differences(first, second)) or "no differences outside timed figures")
