#!/bin/bash
# The same benchmark run at BASE (before) and HEAD (after), each in its own worktree, one after the other; the
# outputs compared (JSON layout and untimed values, CSVs byte for byte, summary.md and the HTML with every number
# masked); then HEAD reads the JSON report and the baseline that BASE wrote.
#   bash scripts/report_before_after.sh 365acce            (outputs under /tmp/ba)
set -u
BASE=${1:?usage: report_before_after.sh BASE_COMMIT}
REPO=$(git rev-parse --show-toplevel)
PY=${PYTHON:-$REPO/.venv/bin/python}
cd "$REPO"
rm -rf /tmp/ba && mkdir -p /tmp/ba
git worktree add -q /tmp/ba/old "$BASE"
git worktree add -q /tmp/ba/new HEAD
ARGS="benchmarks/test_accuracy.py benchmarks/test_resources.py benchmarks/test_latency.py --sketch-models=onnx,cnn --sketch-samples-per-category=10 --sketch-batch-sizes=1,32 -p no:cacheprovider -q"
for side in old new; do
  (cd /tmp/ba/$side && PYTHONPATH=/tmp/ba/$side $PY -m pytest $ARGS --sketch-json=/tmp/ba/$side.json --sketch-html=/tmp/ba/$side.html --sketch-report-dir=/tmp/ba/$side-dir --sketch-save-baseline=/tmp/ba/$side-baseline.json.gz > /tmp/ba/$side.log 2>&1; echo "$side rc $?")
done
$PY $REPO/scripts/compare_report_layout.py /tmp/ba/old.json /tmp/ba/new.json
diff <(head -1 /tmp/ba/old-dir/results.csv) <(head -1 /tmp/ba/new-dir/results.csv) && echo "results.csv header same"
diff <(cut -d, -f1-9 /tmp/ba/old-dir/results.csv) <(cut -d, -f1-9 /tmp/ba/new-dir/results.csv) && echo "results.csv accuracy columns same"
for f in onnx/per_category.csv onnx/confusion.csv cnn/per_category.csv cnn/confusion.csv category_by_model.csv; do cmp -s /tmp/ba/old-dir/$f /tmp/ba/new-dir/$f && echo "$f identical" || echo "$f DIFFERS"; done
diff <(grep -v '^|\|^_\|^- \*\*' /tmp/ba/old-dir/summary.md) <(grep -v '^|\|^_\|^- \*\*' /tmp/ba/new-dir/summary.md) && echo "summary.md non-figure lines same"
# HEAD reads the previous commit's files
cd /tmp/ba/new
$PY -m pytest_sketchbench.cli report /tmp/ba/old.json --html /tmp/ba/old-rerendered.html --report-dir /tmp/ba/old-rerendered; echo "report rc $?"
$PY -m pytest_sketchbench.cli compare /tmp/ba/old.json /tmp/ba/new.json; echo "compare rc $?"
PYTHONPATH=/tmp/ba/new $PY -m pytest benchmarks/test_baseline.py --sketch-models=onnx,cnn --sketch-samples-per-category=10 --sketch-batch-sizes=1 -p no:cacheprovider -q --sketch-baseline=/tmp/ba/old-baseline.json.gz 2>&1 | tail -3
cd "$REPO"; git worktree remove --force /tmp/ba/old; git worktree remove --force /tmp/ba/new
