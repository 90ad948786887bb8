"""The codec: one record spelled for the JSON report, the xdist wire and the baseline file, and read back."""

from __future__ import annotations

import dataclasses
import json

import jsonschema
import numpy as np
import pytest

from conftest import REPO
from pytest_sketchbench.codec import (
    FORMAT_VERSION,
    baseline_entry,
    baseline_models_in,
    baseline_models_out,
    baseline_row_of,
    baseline_rows_in,
    baseline_rows_out,
    check_report_version,
    from_wire,
    model_result,
    record_from_result,
    to_wire,
)
from pytest_sketchbench.errors import SketchBenchError
from pytest_sketchbench.metrics import accuracy_report, parity
from pytest_sketchbench.report.json_report import SCHEMA_PATH, json_safe, json_text
from pytest_sketchbench.results import BaselineRow, CategoryChange, Memory, ModelResult, Verdict
from pytest_sketchbench.stats import latency_stats

GOLDEN = REPO / "tests" / "data" / "golden" / "model_result.json"


def fixed_record() -> ModelResult:
    """A result as a run holds it: timings keyed by batch size (int), batch 32 before batch 1 on purpose."""
    one, many = [0.00125, 0.0013, 0.0012], [0.0095, 0.0096, 0.0094]
    return ModelResult(
        "cnn", device_profile="cpu", device="cpu", hardware="cpu: AMD EPYC (2 cores)",
        timing={32: latency_stats(many, 32), 1: latency_stats(one, 1)},
        accuracy=accuracy_report(np.eye(3)[[0, 1, 2, 2]], np.array([0, 1, 2, 2]), np.array([0, 1, 2, 1]),
                                 ["cat", "dog", "sun"]),
        verdicts=[Verdict(test="t::test_accuracy[cnn]", check="min_accuracy", measured=0.75, limit=0.5,
                          passed=True, status="passed", message="cnn accuracy 0.750 >= 0.500")],
        predicted=[0, 1, 2, 2], load_s=0.5, model_info={"name": "cnn", "file_size_bytes": 42},
        memory=Memory(rss_before_mb=100.0, peak_rss_mb=112.0, peak_growth_mb=12.0), memory_context=["onnxruntime"],
        model_sha256="ab" * 32, dataset_fingerprint="0123456789abcdef", outcomes={"passed": 1},
        relative_speed={
            ("calibration", 1): {"ratio": 12.9, "ci_low": 12.7, "ci_high": 13.1, "rounds": 200,
                                 "reference": "calibration", "batch_size": 1, "clock": "cpu"},
            ("baseline:cnn@v2", 32): {"ratio": 1.01, "ci_low": 0.98, "ci_high": 1.04, "rounds": 100,
                                      "reference": "baseline:cnn@v2", "batch_size": 32, "clock": "cpu"}},
        parity={"onnx": dataclasses.replace(parity(np.array([0, 1, 2, 2]), np.array([0, 1, 2, 1]),
                                                   np.array([0, 1, 2, 1])), with_model="onnx")},
        extras={"api": {"success_rate": 1.0}}, baseline_rows=fixed_rows()[:2])


def fixed_rows() -> list[BaselineRow]:
    """One row of each shape: McNemar with its lost/gained drawings and categories, a same-run ratio with its
    interval, a margin, and a text row."""
    return [BaselineRow("cnn", "accuracy", "accuracy", 0.908, 0.905, -0.003, "no significant change", p_value=0.63,
                        p_test="McNemar exact, two-sided", lost=3, gained=1,
                        significant_categories=[CategoryChange("cat", -0.05, 0.012)], test="t::test_accuracy[cnn]"),
            BaselineRow("cnn", "p50 latency @1 (ms), same run", "same-run latency", 1.2, 1.26, 1.05, "inconclusive",
                        p_test="sequential paired bootstrap", ci=(0.98, 1.12), confidence=0.95),
            BaselineRow("cnn", "model size (MB)", "margin", 7.26, 7.3, 0.04, "no significant change"),
            BaselineRow("onnx", "presence", "text", "measured", None, "erred in the new run", "missing", gated=True)]


def test_a_fixed_record_encodes_byte_for_byte_to_the_committed_json_and_validates():
    encoded = json_text(json_safe(model_result(fixed_record(), "passed")))
    assert encoded + "\n" == GOLDEN.read_text()  # regenerate only on purpose: the JSON is users' API
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(json.loads(encoded), schema["properties"]["model_results"]["additionalProperties"])
    assert list(json.loads(encoded)["timing_results"]) == ["1", "32"]
    assert list(json.loads(encoded)["relative_speed"]) == ["calibration@1", "baseline:cnn@v2@32"]


def test_every_way_out_comes_back_with_batch_sizes_as_numbers():
    record = fixed_record()
    back = record_from_result("cnn", json.loads(json_text(json_safe(model_result(record, "passed")))))
    assert list(back.timing) == [1, 32] and back.timing == record.timing
    assert back.relative_speed == record.relative_speed  # ("baseline:cnn@v2", 32): split at the last "@"
    assert back == dataclasses.replace(record, baseline_rows=[])  # the report keeps them in comparison_to_baseline
    wired = from_wire(json.loads(json.dumps(to_wire(record))))
    assert wired == record


def test_one_baseline_entry_for_a_live_record_and_a_report_read_back(tmp_path):
    record = fixed_record()
    live = baseline_entry(record)
    from_report = baseline_entry(record_from_result("cnn", json.loads(json_text(model_result(record, "passed")))))
    assert live == from_report
    assert live.latency_samples_s == {1: [0.00125, 0.0013, 0.0012], 32: [0.0095, 0.0096, 0.0094]}
    assert live.load_s == 0.5 and live.accuracy == 0.75 and live.predicted == [0, 1, 2, 2]
    stored = json.loads(json.dumps(baseline_models_out({"cnn": live})))
    assert stored["cnn"]["latency_samples_s"] == {"1": [0.00125, 0.0013, 0.0012], "32": [0.0095, 0.0096, 0.0094]}
    assert baseline_models_in(stored) == {"cnn": live}


def test_reports_of_earlier_versions_read_and_newer_ones_are_refused_in_one_line():
    check_report_version("old.json", {"benchmark_metadata": {}, "model_results": {}})  # version 1: no field
    check_report_version("now.json", {"format_version": FORMAT_VERSION})
    for version in (FORMAT_VERSION + 1, "2", 0):
        with pytest.raises(SketchBenchError) as refused:
            check_report_version("new.json", {"format_version": version})
        assert "new.json: is a JSON report of format version" in str(refused.value)
        assert "\n" not in str(refused.value)


V1_REPORT, V1_BASELINE = GOLDEN.parent / "v1_report.json", GOLDEN.parent / "v1_baseline.json.gz"


def test_a_report_and_a_baseline_written_before_the_version_field_still_read(tmp_path):
    """Both written by commit adac550 (before the codec): re-rendered, compared, and gated against."""
    from pytest_sketchbench.baseline import BaselineComparison, load_baseline, settings_for, settings_from
    from pytest_sketchbench.cli import main

    assert "format_version" not in json.loads(V1_REPORT.read_text())
    main(["report", str(V1_REPORT), "--html", str(tmp_path / "r.html"), "--report-dir", str(tmp_path / "dir")])
    assert "onnx" in (tmp_path / "dir" / "results.csv").read_text() and (tmp_path / "r.html").stat().st_size > 0
    assert main(["compare", str(V1_REPORT), str(V1_REPORT), "--json", str(tmp_path / "c.json")]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["rows"]  # the accuracy and latency rows of onnx
    baseline = load_baseline(V1_BASELINE)
    comparison = BaselineComparison(baseline, settings_for(settings_from({}, "t"), "onnx"), "onnx", "cpu",
                                    str(V1_BASELINE))
    row = comparison.latency(1, baseline["models"]["onnx"].latency_samples_s[1])
    assert row is not None and row.verdict != "regression", row


def test_baseline_rows_are_numbers_that_validate_and_print_as_before():
    rows = fixed_rows()
    encoded = json.loads(json.dumps(baseline_rows_out(rows)))
    schema = json.loads(SCHEMA_PATH.read_text())
    for row in encoded:
        jsonschema.validate(row, {**schema["$defs"]["baseline_row"], "$defs": schema["$defs"]})
    assert encoded[0]["current"] == 0.905 and encoded[0]["significant_categories"][0]["p_value"] == 0.012
    assert baseline_rows_in(encoded) == rows
    assert rows[0].cells() == ("0.9080", "0.9050", "-0.0030, 3 drawings lost, 1 gained", "0.63")
    assert rows[0].categories_text() == "cat -0.050 (p=0.012)"
    assert rows[1].cells() == ("1.200", "1.260", "×1.050 (95% CI 0.980–1.120)", "")
    assert rows[2].cells() == ("7.26", "7.30", "+0.04", "")
    assert rows[3].cells() == ("measured", "—", "erred in the new run", "")
    with pytest.raises(jsonschema.ValidationError):  # a key the type does not have
        jsonschema.validate({**encoded[2], "note": "x"}, schema["$defs"]["baseline_row"])


V2_REPORT = GOLDEN.parent / "v2_report_with_baseline.json"


def test_baseline_rows_written_as_text_by_format_2_read_back_as_the_same_figures(tmp_path):
    """A report written with --sketch-baseline(-models) by commit 62c1249 (format 2, rows as text): each row comes back
    as numbers that print exactly as it was written, and re-rendering it writes format-3 rows."""
    from pytest_sketchbench.cli import main

    report = json.loads(V2_REPORT.read_text())
    assert report["format_version"] == 2
    old_rows = report["comparison_to_baseline"]["rows"]
    assert {row["metric"] for row in old_rows} >= {"accuracy", "p50 latency @1 (ms), same run", "model size (MB)"}
    for old in old_rows:
        row = baseline_row_of(old)
        assert row.kind != "text" and isinstance(row.current, float), row
        assert row.cells() == (old["baseline"], old["current"], old["change"], old.get("p_value") or ""), old
    main(["report", str(V2_REPORT), "--html", str(tmp_path / "r.html"), "--report-dir", str(tmp_path / "dir")])
    assert "| accuracy | " + old_rows[0]["baseline"] in (tmp_path / "dir" / "summary.md").read_text()
