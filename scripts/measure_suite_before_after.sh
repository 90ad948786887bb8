#!/usr/bin/env bash
# The README test command before and after, on this machine in the same hour (issue #28's suite-time figure).
#   bash scripts/measure_suite_before_after.sh [BASE_COMMIT]    # default 2d1dba9, the commit #28 was filed on
# "Before" is BASE_COMMIT's own README command (serial, -m ""), run from a checkout in a temporary folder with
# this repository's dev venv (.venv, made by README command 2) and that checkout first on PYTHONPATH; "after" is
# this checkout's README command. Prints both wall times and their ratio. Takes about 30 minutes on 2 cores.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
base=${1:-2d1dba9}
work=$(mktemp -d -p "$(dirname "$repo")" suite-before-XXXX)  # beside the repository: ../shared stays reachable
trap 'rm -rf "$work" "$work.before.log" "$work.after.log"' EXIT
git clone -q "$repo" "$work" && git -C "$work" checkout -q "$base"
. "$repo/.venv/bin/activate"
# the wall time of a command; its output goes to the log named first, whose last line (pytest's summary) is shown
seconds() { local log=$1 start; shift; start=$(date +%s.%N); "$@" > "$log" 2>&1; echo "$(date +%s.%N) - $start" | bc; }
before=$(cd "$work" && PYTHONPATH="$work" bash tests/setup-system.sh > /dev/null 2>&1;
         cd "$work" && PYTHONPATH="$work" seconds "$work.before.log" python -m pytest tests/ -m "" -p no:cacheprovider)
after_command=$(grep -o 'python -m pytest tests/ -m "" [^`]*' README.md | head -1)
after=$(seconds "$work.after.log" bash -c "$after_command")
printf 'before (%s, serial): %.1f s — %s\nafter (%s): %.1f s — %s\nratio: %.2f\n' "$base" "$before" \
       "$(tail -1 "$work.before.log")" "$after_command" "$after" "$(tail -1 "$work.after.log")" \
       "$(echo "$after / $before" | bc -l)"
