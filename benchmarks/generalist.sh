#!/usr/bin/env bash
# The generalist default model, from the data to the report: every command, in order, each step
# skipped when its output is there, so the script resumes where an interrupted session stopped.
#   bash benchmarks/generalist.sh train    # data + train (or resume); run it alone on 2 cores
#   bash benchmarks/generalist.sh ship     # after training: tune, band, export, report
# Data (fixed seeds; rebuilt when missing):
#   data/synth_wide       python -m particleseg.synth --config-name wide          (seed 0)
#                         48 train scans, 16 val scans: the val pool chooses the checkpoint
#                         (val_split=val) and measures the size band
#   data/synth_wide_tune  8 more scans of the wide world (seed 3): tunes the post-processing
#   data/synth, data/ood_independent: the report's test sets (id_test, hard_test, ood_indep)
# No test split chooses anything: checkpoint by val/f1_instance on synth_wide's val split,
# thresholds on synth_wide_tune, band on synth_wide's val split.
# Shipped on 2026-12-06 (MODEL_CARD.md) by copying $run/model.ckpt to
# src/particleseg/weights/default.ckpt, then regenerating docs/results.md and the README table:
#   python evaluate.py --config-name report \
#     baselines.threshwater.params_file=docs/results/ablation/threshwater_params.json \
#     baselines.snow.params_file=docs/results/ablation/snow_params.json
set -euo pipefail
cd "$(dirname "$0")/.."
step=${1:?usage: generalist.sh train|ship}
export WANDB_MODE=${WANDB_MODE:-offline}
run=outputs/train/generalist
data() {  # $1 folder, then the synth arguments
  local folder=$1
  shift
  [ -f "$folder/dataset.json" ] || python -m particleseg.synth "$@"
}
case "$step" in
  train)
    data data/synth_wide --config-name wide progress=false
    if [ -f "$run/checkpoints/last.ckpt" ]; then
      python train.py resume="$run"
    else
      python train.py experiment=generalist hydra.run.dir="$run"
    fi
    ;;
  ship)
    data data/synth_wide_tune --config-name wide out_dir=data/synth_wide_tune seed=3 \
      splits.train.n=8 splits.val.n=0 splits.id_test.n=0 progress=false
    data data/synth progress=false
    [ -f data/ood_independent/dataset.json ] || python -m particleseg.synth.independent
    best=$run/checkpoints/best.ckpt
    [ -f "$run/tuned.json" ] || python -m particleseg.inference.tune "$best" data/synth_wide_tune "$run/tuned.json"
    [ -f "$run/band.json" ] || python -m particleseg.inference.size_band "$best" data/synth_wide "$run/band.json" --split val
    [ -f "$run/model.ckpt" ] || python -m particleseg.inference.export "$best" "$run/model.ckpt" \
      --postprocess "$run/tuned.json" --size-band "$run/band.json" --reference data/synth_wide
    python evaluate.py --config-name report checkpoint="$run/model.ckpt" \
      output_dir=outputs/report/generalist results_md=null
    ;;
  *)
    echo "usage: generalist.sh train|ship" >&2
    exit 2
    ;;
esac
