#!/usr/bin/env bash
# Time from install to first result, as a new user meets it: a fresh clone of this checkout's
# HEAD into a temporary folder, the README's first set-up command (a new venv, pip install -r
# requirements.txt, python predict.py on the bundled sample), then the same predict again.
#   bash benchmarks/bench_install.sh            # prints a markdown table
# The first predict includes everything done once: generating the bundled sample, OpenVINO's
# conversion of the model (cached under $XDG_CACHE_HOME, here a fresh one), the first imports.
# The second run (overwrite=true) is the steady state. pip reads the machine's package index and
# cache as a user's would; run it with the machine otherwise idle.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$root" "$work/particleseg"
cd "$work/particleseg"
# a fresh cache: the bundled sample and OpenVINO's converted model are made as on a new machine
export XDG_CACHE_HOME="$work/cache" WANDB_MODE=offline
now() { date +%s.%N; }
t0=$(now)
python3 -m venv .venv
. .venv/bin/activate
pip install -q -r requirements.txt >"$work/pip.log" 2>&1 || { tail -20 "$work/pip.log"; exit 1; }
t1=$(now)
python predict.py >"$work/first.log" 2>&1 || { tail -20 "$work/first.log"; exit 1; }
t2=$(now)
python predict.py overwrite=true >"$work/second.log" 2>&1 || { tail -20 "$work/second.log"; exit 1; }
t3=$(now)
size=$(du -sm .venv | cut -f1)
cores=$(nproc)
echo "| step | seconds |"
echo "|---|---|"
printf '| new venv + pip install -r requirements.txt (%s MB installed) | %.0f |\n' "$size" "$(awk "BEGIN{print $t1 - $t0}")"
printf '| first python predict.py (sample generated, OpenVINO conversion, imports) | %.0f |\n' "$(awk "BEGIN{print $t2 - $t1}")"
printf '| install to first result | %.0f |\n' "$(awk "BEGIN{print $t2 - $t0}")"
printf '| second python predict.py overwrite=true (steady state) | %.0f |\n' "$(awk "BEGIN{print $t3 - $t2}")"
echo
echo "($cores cores, $(date +%Y-%m-%d), commit $(git rev-parse --short HEAD))"
grep -E "particles|^  ->" "$work/first.log" | head -3 || true
