#!/usr/bin/env bash
# Issue 4's Omniglot runs sized for a 2-core CPU machine with no GPU (about two hours on one core, MAML most of it).
# bench/train_all.sh is the full-size version for a GPU; this one trains the same methods on the
# same data and split with far fewer episodes, so its numbers are a lower bound of what the
# recipes reach. Results as JSON under OUT_DIR, tables in OUT_DIR/summary.txt.
#
#   FACESHOT_DATA=../shared/data bench/train_omniglot_cpu.sh OUT_DIR
#
# Sizes: prototypical networks 600 episodes of 60-way 5-shot (Snell et al. train ~20k+);
# matching networks 800 episodes of 20-way 1-shot; first-order MAML 4,000 meta-iterations of
# 4 tasks 5-way 1-shot, and 600 of 2 tasks 20-way 1-shot (a model per N, as in the paper).
# Every evaluation: 600 episodes, 15 queries per class.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:?usage: FACESHOT_DATA=/path/to/data bench/train_omniglot_cpu.sh OUT_DIR}
DATA=${FACESHOT_DATA:?set FACESHOT_DATA to the folder holding omniglot/}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

fs() { "$PY" -m models.fewshot.cli "$@"; }
# shellcheck source=bench/steps.sh
source bench/steps.sh  # the cd above made the repo root the working directory

OMNI=("$DATA/omniglot/images_background_small1" "$DATA/omniglot/images_background_small2")
LAKE="$DATA/omniglot/one-shot-classification"
RUNS="$OUT/runs"
COMMON=(--quiet --dataset omniglot --data "${OMNI[@]}" --seed 0)
EVAL=(--ways 5 20 --shots 1 5 --episodes 600 --lake "$LAKE")

step omniglot_protonet_train fs train "${COMMON[@]}" --method protonet --out-dir "$RUNS/omniglot_protonet" \
    --n-way 60 --n-shot 5 --n-query 5 --steps-per-epoch 150 --epochs 4 --lr 1e-3 --lr-step-epochs 2 --val-episodes 100
step omniglot_protonet_eval fs evaluate --checkpoint "$RUNS/omniglot_protonet/best.pt" "${EVAL[@]}" \
    --out "$OUT/omniglot_protonet.json"

step omniglot_matching_train fs train "${COMMON[@]}" --method matching --out-dir "$RUNS/omniglot_matching" \
    --n-way 20 --n-shot 1 --n-query 10 --steps-per-epoch 200 --epochs 4 --lr 1e-3 --lr-step-epochs 2 --val-episodes 100
step omniglot_matching_eval fs evaluate --checkpoint "$RUNS/omniglot_matching/best.pt" "${EVAL[@]}" \
    --out "$OUT/omniglot_matching.json"

# First-order MAML as in the paper: a learned N-way head, so one model per N (with a zero head, as the
# previous version of this script had, first-order MAML drops the only path from the support set to the
# query loss, and learns little). 5-way: inner lr 0.4, 1 step in training, 3 at test.
step omniglot_fomaml5_train fs train "${COMMON[@]}" --method fomaml --out-dir "$RUNS/omniglot_fomaml5" \
    --n-way 5 --n-shot 1 --n-query 15 --meta-batch 4 --inner-lr 0.4 --inner-steps 1 --eval-inner-steps 3 \
    --steps-per-epoch 400 --epochs 10 --lr 1e-3 --val-episodes 100
step omniglot_fomaml5_eval fs evaluate --checkpoint "$RUNS/omniglot_fomaml5/best.pt" --ways 5 --shots 1 5 \
    --episodes 600 --out "$OUT/omniglot_fomaml5.json"
# 20-way: inner lr 0.1, 5 steps; its 20-way head also takes Lake's 20-way runs.
step omniglot_fomaml20_train fs train "${COMMON[@]}" --method fomaml --out-dir "$RUNS/omniglot_fomaml20" \
    --n-way 20 --n-shot 1 --n-query 5 --meta-batch 2 --inner-lr 0.1 --inner-steps 5 --eval-inner-steps 5 \
    --steps-per-epoch 150 --epochs 4 --lr 1e-3 --val-episodes 100
step omniglot_fomaml20_eval fs evaluate --checkpoint "$RUNS/omniglot_fomaml20/best.pt" --ways 20 --shots 1 5 \
    --episodes 600 --lake "$LAKE" --out "$OUT/omniglot_fomaml20.json"

"$PY" bench/summarize_fewshot.py "$OUT" | tee "$OUT/summary.txt"
