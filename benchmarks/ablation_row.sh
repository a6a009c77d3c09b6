#!/usr/bin/env bash
# One row of the recipe ablation (docs/results.md): train (or resume), choose and tune on the
# validation scans, export, score with the report, keep its summary, refresh the ablation table.
#   bash benchmarks/ablation_row.sh ablation_norm          # experiment name = run folder name
#   bash benchmarks/ablation_row.sh ablation_recipe        # row 1: the cpu_small model, not retrained
#   bash benchmarks/ablation_row.sh ablation_wide '~tests.ood_indep' '~baseline@baselines.snow'
#       # further arguments go to the report: here a first pass on two test sets, model and
#       # ThreshWater only (the full report later reuses its predictions)
# Needs data/synth, data/synth_val, data/ood_independent (and data/synth_wide for ablation_wide):
#   python -m particleseg.synth
#   python -m particleseg.synth out_dir=data/synth_val seed=1 splits.train.n=8 splits.id_test.n=0 splits.ood_test.n=0
#   python -m particleseg.synth.independent
#   python -m particleseg.synth --config-name wide
# The baselines are tuned once on data/synth's train split (by row 1's report when their files
# are missing) and kept in docs/results/ablation/, so every row faces the same baselines; each
# row's report summary is kept there too, so the table outlives outputs/.
set -euo pipefail
row=${1:?usage: ablation_row.sh EXPERIMENT [REPORT_OVERRIDES...]}
shift
keep=docs/results/ablation
mkdir -p "$keep"
export WANDB_MODE=${WANDB_MODE:-offline}
baselines=()
for b in threshwater snow; do
  case " $* " in *" ~baseline@baselines.$b "*) continue ;; esac   # that baseline is left out
  [ -f "$keep/${b}_params.json" ] && baselines+=("baselines.$b.params_file=$keep/${b}_params.json")
done
if [ "$row" = ablation_recipe ]; then
  # the model shipped until the generalist replaced it (commit ed09025) was trained with
  # today's recipe at this budget: take it from the git history
  model=outputs/train/ablation_recipe/model.ckpt
  mkdir -p "$(dirname "$model")"
  [ -f "$model" ] || git show ed09025:src/particleseg/weights/default.ckpt > "$model"
else
  run=outputs/train/$row
  if [ ! -f "$run/result.json" ]; then
    if [ -f "$run/checkpoints/last.ckpt" ]; then
      python train.py resume="$run"
    else
      python train.py experiment="$row" hydra.run.dir="$run"
    fi
  fi
  [ -f "$run/tuned.json" ] || python -m particleseg.inference.tune "$run/checkpoints/best.ckpt" data/synth_val "$run/tuned.json"
  [ -f "$run/model.ckpt" ] || python -m particleseg.inference.export "$run/checkpoints/best.ckpt" "$run/model.ckpt" --postprocess "$run/tuned.json"
  model=$run/model.ckpt
fi
python evaluate.py --config-name report checkpoint="$model" output_dir="outputs/report/$row" results_md=null "${baselines[@]}" "$@"
cp "outputs/report/$row/summary.json" "$keep/$row.json"
for b in threshwater snow; do
  [ -f "$keep/${b}_params.json" ] || cp "outputs/report/$row/${b}_params.json" "$keep/${b}_params.json"
done
python -m particleseg.evaluation.ablation docs/results.md --keep-missing \
  "today's recipe (cpu_small, shipped until ed09025)=$keep/ablation_recipe.json" \
  "+ per-scan normalization=$keep/ablation_norm.json" \
  "+ appearance randomization=$keep/ablation_appearance.json" \
  "+ the wider world=$keep/ablation_wide.json"
