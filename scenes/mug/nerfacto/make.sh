#!/usr/bin/env bash
# Remake scenes/mug/nerfacto/ (a nerfacto checkpoint of the mug scene, trained on the CPU, ~15 min on 2 cores).
# Run from the repository root in the nerfstudio virtual environment (see README, "nerfstudio checkpoints").
set -euo pipefail
nerfdata scene scenes/mug --out data/mug
# nerfstudio-data samples only masked pixels when frames name masks, and wants a val split: train on
# every pixel (white background), validate on the test views.
python - <<'PY'
import json
meta = json.load(open("data/mug/transforms.json"))
for frame in meta["frames"]:
    frame.pop("mask_path", None)
meta["val_filenames"] = meta["test_filenames"]
json.dump(meta, open("data/mug/transforms_nerfstudio.json", "w"), indent=1)
PY
python -m nerfdata.fields.nerfstudio.train nerfacto --machine.device-type cpu --vis tensorboard \
    --output-dir data/ns-runs --experiment-name mug --timestamp run \
    --max-num-iterations 800 --steps-per-save 800 \
    --steps-per-eval-batch 100000 --steps-per-eval-image 100000 --steps-per-eval-all-images 100000 \
    --pipeline.datamanager.train-num-rays-per-batch 512 \
    --pipeline.model.num-levels 8 --pipeline.model.max-res 512 --pipeline.model.log2-hashmap-size 16 \
    --pipeline.model.num-proposal-samples-per-ray 64 32 --pipeline.model.num-nerf-samples-per-ray 32 \
    --pipeline.model.proposal-net-args-list.0.log2-hashmap-size 14 --pipeline.model.proposal-net-args-list.0.max-res 64 \
    --pipeline.model.proposal-net-args-list.1.log2-hashmap-size 14 --pipeline.model.proposal-net-args-list.1.max-res 128 \
    --pipeline.model.background-color white --pipeline.model.camera-optimizer.mode off \
    nerfstudio-data --data data/mug/transforms_nerfstudio.json
run=data/ns-runs/mug/nerfacto/run
rm -rf scenes/mug/nerfacto/nerfstudio_models
cp "$run/config.yml" "$run/dataparser_transforms.json" scenes/mug/nerfacto/
cp -r "$run/nerfstudio_models" scenes/mug/nerfacto/
