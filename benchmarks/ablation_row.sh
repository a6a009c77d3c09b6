#!/usr/bin/env bash
# One row of the issue-16 ablation (docs/results.md): train (or resume), choose and tune on the
# validation scans, export, score with the report, and refresh the ablation table.
#   bash benchmarks/ablation_row.sh ablation_norm          # experiment name = run folder name
# Needs data/synth, data/synth_val, data/ood_independent (and data/synth_wide for ablation_wide):
#   python -m particleseg.synth
#   python -m particleseg.synth out_dir=data/synth_val seed=1 splits.train.n=8 splits.id_test.n=0 splits.ood_test.n=0
#   python -m particleseg.synth.independent
#   python -m particleseg.synth --config-name wide
# The baselines are tuned once, by row 1's report (the shipped model, today's recipe):
#   python evaluate.py --config-name report output_dir=outputs/report/ablation_recipe
# and every later row reuses their parameter files, so all rows face the same baselines.
set -euo pipefail
row=${1:?usage: ablation_row.sh EXPERIMENT}
run=outputs/train/$row
export WANDB_MODE=${WANDB_MODE:-offline}
if [ ! -f "$run/result.json" ]; then
  if [ -f "$run/checkpoints/last.ckpt" ]; then
    python train.py resume="$run"
  else
    python train.py experiment="$row" hydra.run.dir="$run"
  fi
fi
[ -f "$run/tuned.json" ] || python -m particleseg.inference.tune "$run/checkpoints/best.ckpt" data/synth_val "$run/tuned.json"
[ -f "$run/model.ckpt" ] || python -m particleseg.inference.export "$run/checkpoints/best.ckpt" "$run/model.ckpt" --postprocess "$run/tuned.json"
base=outputs/report/ablation_recipe
python evaluate.py --config-name report checkpoint="$run/model.ckpt" output_dir="outputs/report/$row" results_md=null \
  baselines.threshwater.params_file="$base/threshwater_params.json" baselines.snow.params_file="$base/snow_params.json"
python -m particleseg.results_ablation docs/results.md \
  "today's recipe (shipped model)=outputs/report/ablation_recipe" \
  "+ per-scan normalization=outputs/report/ablation_norm" \
  "+ appearance randomization=outputs/report/ablation_appearance" \
  "+ the wider world=outputs/report/ablation_wide"
