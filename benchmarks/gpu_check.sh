#!/usr/bin/env bash
# One short GPU check for a session that has a CUDA GPU (written for an H200; ~5-8 min).
#
# Needs: a Python with a CUDA build of torch 2.13 (+ numpy, opencv-python-headless, safetensors,
# huggingface_hub as in requirements.txt) as $PY; the benchmark's photos and the reference wheel,
# which a machine without the shared data / internet gets by carrying two gitignored folders
# made beforehand on a machine that has them:
#     python -m benchmarks.frames --export artifacts/bench-data
#     mkdir -p artifacts/cache && cp ~/.cache/maskwatch/facenet_pytorch-2.6.0-py3-none-any.whl artifacts/cache/
# (device tool: carry=["artifacts"]). Results: benchmarks/results/speed-<gpu name>.json and
# $OUT/gpu_check.log when $OUT is set. Quote the card name with every number.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
LOG=${OUT:-/tmp}/gpu_check.log
[ -d artifacts/bench-data ] && export MASKWATCH_DATA=${MASKWATCH_DATA:-artifacts/bench-data}
[ -d artifacts/cache ] && export MASKWATCH_CACHE=${MASKWATCH_CACHE:-artifacts/cache}
export HF_HUB_OFFLINE=1
{
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA torch'; print(torch.__version__, torch.cuda.get_device_name(0))"

# 1. correctness on the GPU: batched == per-frame (fp32), and GPU per-frame ~ CPU per-frame
$PY - <<'PYEOF'
import numpy as np, torch, time
from benchmarks.frames import group_photos
from pipeline.engine import MaskDetector
from pipeline.batch import detect_batch
from pipeline.boxes import pairwise_iou
frames = [f for _, f in group_photos(640, 480)][:16]
gpu, cpu = MaskDetector.load(device="cuda"), MaskDetector.load(device="cpu")
per = [gpu.detect(f) for f in frames]
bat = detect_batch(gpu, frames, batch_size=8)
cpu_per = [cpu.detect(f) for f in frames]
def agree(a, b):
    n = m = 0
    for x, y in zip(a, b):
        n += len(x)
        if len(x) and len(y):
            iou = pairwise_iou(torch.tensor([d.box for d in x]), torch.tensor([d.box for d in y]))
            m += int((iou.max(1).values > 0.99).sum())
    return m, n
print("batched vs per-frame (cuda): boxes IoU>0.99:", agree(per, bat),
      "labels equal:", all(d.label == e.label for x, y in zip(per, bat) for d, e in zip(x, y)))
print("cuda per-frame vs cpu per-frame: boxes IoU>0.99:", agree(cpu_per, per))
PYEOF

# 2. speed: reference vs ours single-frame, batched 1/8/32/64 in fp32/fp16/bf16, realtime mode
$PY -m benchmarks.speed --device cuda --frames 32 --repeats 3 --sizes 640x480 1280x720 \
    --batch-sizes 1 8 32 64 --amp none fp16 bf16 --realtime-min-face 20
} 2>&1 | tee "$LOG"
[ -n "${OUT:-}" ] && cp benchmarks/results/speed-*h200*.json "$OUT"/ 2>/dev/null || true
