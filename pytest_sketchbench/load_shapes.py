"""Load shapes beyond one Poisson rate: a step or ramp schedule of LoadGen Server runs, and the knee found.

Users ask where a server stops keeping up, not only whether it keeps up at one rate. ``load_steps_qps = [50,
100, 200, 400]`` holds each rate for ``step_duration_ms`` (LoadGen's own Poisson arrivals at each), and
``ramp_qps = { from = 50, to = 800, steps = 8 }`` makes the rates a geometric ramp. Each step reports its
achieved rate, p50 and p99 (of the answered requests where some failed) and error rate. The knee is the highest
step before the first that saturates: it completes under 95 % of the rate LoadGen scheduled (its Poisson draws,
not the nominal target: a short step's draws vary by several per cent), or its p99 exceeds
``knee_p99_factor`` (default 3) × the first step's, or it loses more than 1 % of its requests. ``min_knee_qps``
gates it (judged with the host audit, as the other wall-clock load figures).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

KNEE_P99_FACTOR, KNEE_RATE_SHARE, KNEE_ERROR_RATE = 3.0, 0.95, 0.01


def step_rates(table: dict) -> list[float]:
    """The schedule's rates, lowest first."""
    if "load_steps_qps" in table:
        return sorted(float(rate) for rate in table["load_steps_qps"])
    ramp = table["ramp_qps"]
    low, high, steps = float(ramp["from"]), float(ramp["to"]), int(ramp["steps"])
    return [round(float(rate), 1) for rate in np.geomspace(low, high, steps)]


def saturated(step: dict, first: dict, factor: float) -> str | None:
    """Why a step is past the knee, or None."""
    scheduled = step.get("scheduled_qps") or step["target_qps"]
    if step["achieved_qps"] < KNEE_RATE_SHARE * scheduled:
        return f"completed {step['achieved_qps']:.1f} of {scheduled:.1f} QPS scheduled"
    if step["p99_ms"] is not None and first["p99_ms"] and step["p99_ms"] > factor * first["p99_ms"]:
        return f"p99 {step['p99_ms']:.2f} ms > {factor:g} × {first['p99_ms']:.2f} ms"
    if step["error_rate"] > KNEE_ERROR_RATE:
        return f"{step['error_rate']:.1%} of requests failed"
    return None


def knee(steps: list[dict], factor: float = KNEE_P99_FACTOR) -> dict:
    """The highest step before the first saturated one; ``knee_qps`` None when even the first saturates."""
    for index, step in enumerate(steps):
        why = saturated(step, steps[0], factor)
        if why:
            return {"knee_qps": steps[index - 1]["target_qps"] if index else None, "saturated_at": step["target_qps"],
                    "why": why}
    return {"knee_qps": steps[-1]["target_qps"] if steps else None, "saturated_at": None,
            "why": "no step saturated: the knee is above the schedule"}


def run_steps(classify, images: np.ndarray, settings: dict, log_dir: Path, concurrency: int):
    """Each rate of the schedule as one LoadGen Server run; the result of the last, with every step on it."""
    from pytest_sketchbench.loadgen import one_test

    duration_ms = int(settings.get("step_duration_ms", settings["min_duration_ms"]))
    steps, answers, result = [], [], None
    for rate in step_rates(settings):
        held = {**settings, "server_target_qps": rate, "min_duration_ms": duration_ms, "min_query_count": 1}
        result, record = one_test(classify, images, "Server", "PerformanceOnly", held, 0.0,
                                  log_dir / "steps" / f"{rate:g}", concurrency)
        count = result.failure_count
        steps.append({"target_qps": rate, "scheduled_qps": result.scheduled_qps,
                      "achieved_qps": float(result.qps or 0.0), "p50_ms": result.latency_ms(50),
                      "p99_ms": result.latency_ms(99), "error_rate": count.rate if count else 0.0,
                      "valid": result.valid})
        answers += record.answers
    result.steps = {"steps": steps, **knee(steps, float(settings.get("knee_p99_factor", KNEE_P99_FACTOR)))}
    return result, answers


def step_table(shape: dict) -> list[str]:
    """The steps as aligned text lines, the knee marked."""
    lines = ["target QPS  scheduled  achieved   p50 ms   p99 ms   errors  LoadGen"]
    for step in shape["steps"]:
        mark = "  ← knee" if step["target_qps"] == shape["knee_qps"] else (
            "  ← saturated" if step["target_qps"] == shape["saturated_at"] else "")
        p50 = "–" if step["p50_ms"] is None else f"{step['p50_ms']:.2f}"
        p99 = "–" if step["p99_ms"] is None else f"{step['p99_ms']:.2f}"
        scheduled = "–" if step.get("scheduled_qps") is None else f"{step['scheduled_qps']:.1f}"
        lines.append(f"{step['target_qps']:>10g} {scheduled:>10} {step['achieved_qps']:>9.1f} {p50:>8} {p99:>8} "
                     f"{step['error_rate']:>8.2%}  {'VALID' if step['valid'] else 'INVALID'}{mark}")
    return lines


def knee_verdict(model: str, where: str, shape: dict, limit: float | None) -> tuple:
    """(check, measured, limit, passed, message) for ``min_knee_qps``; measured only when no limit is set."""
    found = shape["knee_qps"]
    figure = f"{where}: knee {found:g} QPS" if found is not None else f"{where}: no step kept up"
    if limit is None:
        return "min_knee_qps", found, None, None, f"{figure} (no min_knee_qps configured)"
    passed = found is not None and found >= limit
    return "min_knee_qps", found, limit, passed, f"{figure} {'>=' if passed else '<'} min_knee_qps {limit:g}"
