#!/usr/bin/env bash
# Synthetic fill for rare classes, end to end on a CPU (issue 8).
#
#   bash examples/synthetic_fill/run.sh            # from the repository root; OUT=... to choose the folder
#
# 1. build an imbalanced shapes dataset (imbalance 10: circle 1391 ... cross 139 images),
# 2. train a conditional DCGAN on it for a few CPU minutes,
# 3. evaluate the generator (class accuracy of its samples),
# 4. rebuild with the rare classes filled by the generator, keeping only samples the
#    evaluation classifier assigns to their class (--synth-filter),
# 5. compare the balance of both datasets with `gandata stats`.
# The expected output is in README.md beside this script.
set -euo pipefail

OUT=${OUT:-example-out/synthetic_fill}
STEPS=${STEPS:-2000}
CLASSIFIER_STEPS=${CLASSIFIER_STEPS:-300}
SOURCE="synth:shapes?count=3000&imbalance=10"
# The evaluation classifier is trained once (first by `gantrain eval`) and cached here;
# the synthetic fill's filter reuses it (same dataset, same classifier options).
export GANTRAIN_CACHE="$OUT/cache"

echo "== 1. imbalanced dataset"
gandata build "$SOURCE" --size 32 --val-fraction 0.1 -o "$OUT/data/imbalanced" -q --overwrite
gandata stats "$OUT/data/imbalanced" --floor 0 --split train

echo "== 2. conditional DCGAN, $STEPS CPU steps"
gantrain train "$OUT/data/imbalanced" -o "$OUT/runs/cond" --conditional --ema --steps "$STEPS" \
    --batch-size 64 --ngf 32 --ndf 32 --eval-every 0 --checkpoint-every 1000 --device cpu 2>/dev/null | tail -n 1

echo "== 3. quality of the generator's samples"
gantrain eval "$OUT/runs/cond" --samples 1000 --classifier-steps "$CLASSIFIER_STEPS" --device cpu 2>/dev/null

echo "== 4a. fill every class up to 600 training images: refused, too synthetic for the rarest"
gandata build "$SOURCE" --size 32 --val-fraction 0.1 -o "$OUT/data/filled" -q \
    --balance synthesize --sampling-strategy 600 --synth-from "$OUT/runs/cond" || true

echo "== 4b. the same, allowing up to 80% synthetic per class, with the classifier filter"
gandata build "$SOURCE" --size 32 --val-fraction 0.1 -o "$OUT/data/filled" \
    --balance synthesize --sampling-strategy 600 --synth-from "$OUT/runs/cond" --max-synthetic-share 0.8 \
    --synth-filter 0.5 --synth-option classifier_steps="$CLASSIFIER_STEPS"

echo "== 5. balance after the fill"
gandata stats "$OUT/data/filled" --floor 0 --split train
