"""One model's results as typed parts: what every measuring step writes into and every report reads.

Attributes, not key names: :mod:`.codec` alone spells a result on disk and between processes. Timings are keyed by
batch size (``int``), side-by-side ratios by ``(reference, batch size)``, parity by the other model's name. Parts
that only one renderer reads (a LoadGen run, a profile, a served model's time split) stay plain JSON-ready dicts in
their typed slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Figures = dict[str, Any]  # a JSON-ready part read by one renderer only


@dataclass
class LatencyStats:
    """Raw per-call timings (seconds, :attr:`samples_s`) and their summary in milliseconds; the intervals are
    order-statistic 95 % intervals, None where the samples are too few to bound that percentile."""

    rounds: int
    batch_size: int
    mean_ms: float
    median_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    stddev_ms: float
    min_ms: float
    max_ms: float
    iqr_ms: float
    p50_ci_ms: list[float] | None
    p90_ci_ms: list[float] | None
    p95_ci_ms: list[float] | None
    p99_ci_ms: list[float] | None
    throughput_per_s: float  # drawings over total time, so slow outliers count
    timer: str = "sketchbench"  # who timed it: "sketchbench", "pytest-benchmark" or "api-requests"
    samples_s: list[float] = field(default_factory=list, repr=False)


@dataclass
class CategoryAccuracy:
    precision: float
    recall: float
    f1: float
    support: int
    accuracy: float  # = recall: the share of the category's drawings named right


@dataclass
class Accuracy:
    """The accuracy pass: the overall figure with its Wilson interval, per category, and the confusion matrix."""

    n_samples: int
    correct: int
    accuracy: float
    accuracy_ci95: list[float]
    top3_accuracy: float | None  # None: the model gives no probabilities (not applicable, not faked)
    top5_accuracy: float | None
    macro_precision: float
    macro_recall: float
    macro_f1: float
    micro_precision: float
    micro_recall: float
    micro_f1: float
    per_category: dict[str, CategoryAccuracy]
    confusion_matrix: list[list[int]]
    labels: list[str]
    invalid_predictions: int
    top_k_applicable: bool | None = None
    open_set: Figures | None = None  # a model with classes outside the dataset: its open-set figure
    accuracy_by_rendering: Figures | None = None  # exact rows vs approximate renders
    calibration: Calibration | None = None  # None: no probabilities (class-only models) or an older report


@dataclass
class Calibration:
    """Whether the confidences mean anything (``calibration.py``): each figure with its 95 % bootstrap interval,
    and the reliability diagram as ``[mean confidence, accuracy, drawings]`` per non-empty bin."""

    binning: str
    n_samples: int
    ece: float
    ece_ci95: list[float]
    nll: float
    nll_ci95: list[float]
    brier: float
    brier_ci95: list[float]
    mean_confidence: float
    mean_confidence_ci95: list[float]
    reliability: list[list[float]]


# the smallest change of a memory figure that counts: RSS moves by pages and allocator arenas between runs (a
# growth of 0 MB in one run and 0.004 MB, one page, in the next is no regression)
MEMORY_NOISE_MB = 20.0


@dataclass
class Memory:
    rss_before_mb: float
    peak_rss_mb: float
    peak_growth_mb: float


@dataclass
class Verdict:
    """One check's outcome: passed, failed or inconclusive (``passed`` None), or measured with no limit."""

    test: str
    check: str
    measured: Any
    limit: Any
    passed: bool | None
    status: str | None  # None in reports written before it existed: ``passed`` alone says it
    message: str

    @property
    def outcome(self) -> str:
        return self.status or {True: "passed", False: "failed"}.get(self.passed, "measured")  # type: ignore[arg-type]


@dataclass
class Disagreement:
    """A drawing two models answer differently (category names once the session has named them)."""

    index: int
    label: int | str
    predicted: int | str
    with_predicted: int | str


@dataclass
class Parity:
    """How closely one model follows another on the same drawings."""

    n_samples: int
    agreement: float
    agreement_ci95: list[float]
    disagreements: int
    disagreeing: list[Disagreement]
    max_probability_diff: float | None
    mean_probability_diff: float | None
    with_model: str | None = None


@dataclass
class MergedFrom:
    """Where a merged run's result came from: the file, the machine and its speed index."""

    source: str
    base_model: str
    machine: str
    speed_index: float | None


@dataclass
class CategoryChange:
    """A category whose own accuracy changed significantly against the baseline (McNemar, per category)."""

    category: str
    change: float
    p_value: float


# how a row's change reads (and its figures' decimals): current − baseline, current / baseline, or text as it is
ROW_KINDS = {"accuracy": 4, "latency": 3, "same-run latency": 3, "margin": 2, "text": 0}


@dataclass
class BaselineRow:
    """One figure compared with a baseline, in numbers; :meth:`cells` is the one way every report shows it.

    ``change`` is ``current − baseline`` (kinds ``accuracy`` and ``margin``) or ``current / baseline``
    (``latency``, and ``same-run latency`` with its interval ``ci`` at ``confidence``); kind ``text`` rows (a model
    that vanished, another model file under the same name) hold words."""

    model: str
    metric: str
    kind: str  # one of ROW_KINDS
    baseline: float | str | None
    current: float | str | None
    change: float | str | None
    verdict: str
    p_value: float | None = None
    p_test: str | None = None
    ci: tuple[float, float] | None = None
    confidence: float | None = None
    lost: int | None = None  # drawings right in the baseline, wrong now (accuracy)
    gained: int | None = None
    significant_categories: list[CategoryChange] = field(default_factory=list)
    test: str | None = None
    gated: bool | None = None  # ``sketchbench compare``: whether the metric is in the gate list

    def _figure(self, value: float | str | None) -> str:
        return "—" if value is None else value if isinstance(value, str) else f"{value:.{ROW_KINDS[self.kind]}f}"

    def cells(self) -> tuple[str, str, str, str]:
        """(baseline, current, change, p-value) as text: 0.9080, 0.9050, -0.0030, 3 drawings lost, 1 gained, 0.63."""
        from pytest_sketchbench.stats import percent  # stats imports this module

        change = self.change
        if isinstance(change, float | int):
            digits = ROW_KINDS[self.kind]
            change = f"×{change:.{digits}f}" if "latency" in self.kind else f"{change:+.{digits}f}"
            if self.ci is not None:
                change += f" ({percent(self.confidence or 0.95)} CI {self.ci[0]:.{digits}f}–{self.ci[1]:.{digits}f})"
            if self.lost is not None:
                change += f", {self.lost} drawings lost, {self.gained} gained"
        p_value = "" if self.p_value is None else f"{self.p_value:.2g}"
        return self._figure(self.baseline), self._figure(self.current), change or "", p_value

    def categories_text(self) -> str:
        """'cat -0.050 (p=0.012); sun +0.031 (p=0.04)': the categories whose own change is significant."""
        return "; ".join(f"{c.category} {c.change:+.3f} (p={c.p_value:.2g})" for c in self.significant_categories)

    def line(self) -> str:
        """The row as the terminal and ``sketchbench compare`` print it."""
        baseline, current, change, p_value = self.cells()
        p_value = f", p={p_value} ({self.p_test or 'test'})" if p_value else ""
        return f"{self.model:<12} {self.metric:<26} {baseline} → {current} ({change}{p_value}): {self.verdict}"


@dataclass
class CategoryTable:
    """Accuracy of every category (rows) for every model (columns): where models differ (the report's comparison)."""

    categories: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    accuracy: list[list[float | None]] = field(default_factory=list)


@dataclass
class ModelResult:
    """Everything a run learned about one model; a part nobody measured is None (or empty)."""

    model: str
    device_profile: str | None = None
    hardware: str | None = None
    parallel: Figures | None = None
    timing: dict[int, LatencyStats] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)  # the model's tests by pytest outcome
    category_limits: dict[str, float | None] | None = None
    category_mapping: str | None = None
    categories_left_out: list[str] | None = None
    model_info: Figures | None = None
    device: str | None = None
    accuracy: Accuracy | None = None
    accuracy_pass: Figures | None = None
    relative_speed: dict[tuple[str, int], Figures] = field(default_factory=dict)
    end_to_end: Figures | None = None
    cold_start: Figures | None = None
    batch_sweep: Figures | None = None
    parity: dict[str, Parity] = field(default_factory=dict)
    profile: Figures | None = None
    memory: Memory | None = None
    gpu_memory: Figures | None = None
    placement: Figures | None = None
    memory_context: list[str] | None = None
    load_s: float | None = None
    extras: dict[str, Figures] = field(default_factory=dict)  # a plugin's own figures, by its ``results_key``
    loadgen: dict[str, Figures] | None = None
    loadgen_limits: Figures | None = None
    loadgen_basis: Figures | None = None
    input_diagnosis: Figures | None = None
    predicted: list[int] | None = None  # the answer per drawing, for paired tests after the fact
    dataset_fingerprint: str | None = None
    model_sha256: str | None = None
    baseline_rows: list[BaselineRow] = field(default_factory=list)
    merged_from: MergedFrom | None = None  # set by ``sketchbench merge`` only

    @property
    def file_size_bytes(self) -> int | None:
        return (self.model_info or {}).get("file_size_bytes")

    def batch1(self) -> LatencyStats | None:
        """Latency at batch 1, or at the smallest batch measured."""
        return self.timing.get(1) or (self.timing[min(self.timing)] if self.timing else None)

    def failed_checks(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.passed is False]

    def inconclusive_checks(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == "inconclusive"]


@dataclass
class BaselineEntry:
    """What a baseline file keeps of one model: every figure its comparisons read."""

    predicted: list[int]
    latency_samples_s: dict[int, list[float]]
    peak_growth_mb: float | None
    memory_context: list[str] | None
    model_size_bytes: int | None
    load_s: float | None
    accuracy: float | None
