"""Where a model's time goes (``--sketch-profile`` with ``--sketch-report-dir``): the runtime's operators as a
Chrome trace, the harness as a flame graph, the top operators in the HTML. Runs after every timing, and
no gate reads it; skipped without the option."""


def test_profile(sketch_profile):
    assert sketch_profile.get("trace") or sketch_profile.get("flamegraph"), sketch_profile["notes"]
