"""MLPerf's compliance checks as gates: a system can answer correctly at rest and wrongly, or from a cache, under
load. ``answers_under_load`` (TEST01) compares every answer the SUT gave during a timed run with the accuracy
pass — a deterministic model must give the same class every time; ``no_caching`` (TEST04) runs the scenario
again with one drawing repeated — a server that answers repeats from a cache is more than 10 % faster then;
``seed_robustness`` (TEST05) runs it again with other LoadGen seeds (sample order, arrival schedule) — a
system tuned to the one official sequence is more than 5 % off on another."""

from __future__ import annotations

CACHE_SPEEDUP = 0.9  # MLPerf TEST04: a repeated-sample run more than 10 % faster than the normal one is caching
SEED_TOLERANCE = 0.05  # MLPerf TEST05: performance with other seeds within 5 %
MIN_ANSWERS = 1000  # answers under load compared before an all-equal run may pass (MLPerf samples ~1 %)

Verdict = tuple[str, float | None, float | None, bool | None, str]


def compliance_verdicts(model: str, where: str, result, table: dict) -> list[Verdict]:
    """(check, measured, limit, passed, message) for each compliance check the table asks for."""
    verdicts = []
    if table.get("answers_under_load"):
        verdicts.append(_answers(model, where, result.answers_compared or 0, result.answers_differ or 0,
                                 int(table.get("min_answers_under_load", MIN_ANSWERS))))
    if table.get("no_caching"):
        verdicts.append(_on_a_valid_run(_caching(model, where, result.caching), result.valid))
    if table.get("seed_robustness"):
        verdicts.append(_on_a_valid_run(_seeds(model, where, result.reseeded), result.valid))
    return verdicts


def _on_a_valid_run(verdict: Verdict, valid: bool) -> Verdict:
    """TEST04 and TEST05 pass only beside a run LoadGen calls VALID (as MLPerf requires): in an INVALID run the
    latencies are mostly queueing, in which a cache's speed-up or a tuned sequence's advantage hides."""
    check, measured, limit, passed, message = verdict
    if passed is not True or valid:
        return verdict
    return (check, measured, limit, None, f"{message} — not judged: LoadGen calls the run INVALID (its latencies are "
            "mostly queueing, which hides a difference): lower the load until the run is VALID")


def _seeds(model: str, where: str, reseeded: dict | None) -> Verdict:
    low_bound, high_bound = 1 - SEED_TOLERANCE, 1 / (1 - SEED_TOLERANCE)
    if not reseeded:
        return ("loadgen_seed_robustness", None, SEED_TOLERANCE, None,
                f"{where}: too few answered requests to compare the run with other seeds (seed_robustness)")
    ratio, low, high = reseeded["ratio"], reseeded["ci_low"], reseeded["ci_high"]
    passed = (True if low_bound <= low and high <= high_bound else
              False if high < low_bound or low > high_bound else None)
    relation = {True: "within", False: "outside", None: "≈"}[passed]
    message = (f"{where}: with other LoadGen seeds the median latency is {ratio:.3f}× this run's (95% CI {low:.3f}–"
               f"{high:.3f}) {relation} ±{SEED_TOLERANCE:.0%} (seed_robustness, MLPerf TEST05)")
    if passed is None:
        message += f" — the interval crosses the tolerance: raise min_query_count in [{model}.loadgen]"
    return "loadgen_seed_robustness", ratio, SEED_TOLERANCE, passed, message


def _answers(model: str, where: str, compared: int, differ: int, need: int) -> Verdict:
    passed = False if differ else True if compared >= need else None
    message = (f"{where}: {differ:,} of {compared:,} answers given under load differ from the accuracy pass "
               "(answers_under_load, MLPerf TEST01: every one must match)")
    if passed is None:
        message += (f" — only {compared:,} answers compared, {need:,} needed: raise min_query_count in "
                    f"[{model}.loadgen]")
    elif passed is False:
        message += " — the model answers differently under load (a race, a shared buffer, a batching bug)"
    return "loadgen_answers_under_load", float(differ), 0.0, passed, message


def _caching(model: str, where: str, caching: dict | None) -> Verdict:
    if not caching:
        return ("loadgen_no_caching", None, CACHE_SPEEDUP, None,
                f"{where}: too few answered requests to compare a repeated drawing with the run (no_caching)")
    ratio, low, high = caching["ratio"], caching["ci_low"], caching["ci_high"]
    passed = True if low >= CACHE_SPEEDUP else False if high < CACHE_SPEEDUP else None
    relation = {True: ">=", False: "<", None: "≈"}[passed]
    message = (f"{where}: one drawing repeated takes {ratio:.3f}× the run's median latency (95% CI {low:.3f}–"
               f"{high:.3f}, {caching['variant_requests']:,} vs {caching['normal_requests']:,} requests) "
               f"{relation} {CACHE_SPEEDUP} (no_caching, MLPerf TEST04)")
    if passed is False:
        message += " — repeated drawings are answered faster: the server answers from a cache"
    elif passed is None:
        message += f" — the interval holds the limit: raise min_query_count in [{model}.loadgen]"
    return "loadgen_no_caching", ratio, CACHE_SPEEDUP, passed, message
