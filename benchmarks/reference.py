"""facenet-pytorch 2.6.0's MTCNN, the detector most people use, as the speed/accuracy reference.

The wheel is fetched once with `pip download facenet-pytorch==2.6.0 --no-deps` into a cache
folder outside git (MASKWATCH_CACHE, default ~/.cache/maskwatch), unzipped, and put on sys.path.
It is NOT installed: it pins torch<2.3 and numpy<2, and its torchvision imports fail with torch
2.13. Two tiny stand-ins are injected as fake modules before the import:

* torchvision.ops.boxes.batched_nms: greedy NMS, torchvision's semantics (area (x2-x1)*(y2-y1),
  suppress IoU > threshold, indices by descending score), vectorised numpy per kept box. Its
  time is counted (`standin_seconds`) so a report can show the reference was not slowed by it.
* torchvision.transforms.functional.to_tensor (used only by extract_face, not by detect).

Its weights come from the wheel (facenet_pytorch/data/*.pt; equal to
shared/data/pretrained/mtcnn_original).
"""
from __future__ import annotations

import subprocess
import sys
import time
import types
import zipfile
from pathlib import Path

import numpy as np
import torch

from pipeline.settings import current as current_settings

VERSION = "2.6.0"
CACHE = current_settings().cache_dir
standin_seconds = 0.0


def _nms_numpy(boxes: np.ndarray, scores: np.ndarray, thr: float) -> np.ndarray:
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / np.maximum(area[i] + area[rest] - inter, 1e-12)
        order = rest[iou <= thr]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor,
                iou_threshold: float) -> torch.Tensor:
    """Stand-in for torchvision.ops.boxes.batched_nms (same contract)."""
    global standin_seconds
    t0 = time.perf_counter()
    if boxes.numel() == 0:
        out = torch.empty((0,), dtype=torch.int64, device=boxes.device)
    else:
        offsets = idxs.to(boxes) * (boxes.max() + 1)
        b = (boxes + offsets[:, None]).detach().cpu().double().numpy()
        keep = _nms_numpy(b, scores.detach().cpu().double().numpy(), iou_threshold)
        out = torch.as_tensor(keep, dtype=torch.long, device=boxes.device)
    standin_seconds += time.perf_counter() - t0
    return out


def to_tensor(pic) -> torch.Tensor:
    """Stand-in for torchvision.transforms.functional.to_tensor (HWC -> CHW float)."""
    a = np.asarray(pic)
    if a.ndim == 2:
        a = a[:, :, None]
    t = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))
    return t.float().div(255) if t.dtype == torch.uint8 else t.float()


def _install_standins() -> None:
    if "torchvision.ops.boxes" in sys.modules and hasattr(sys.modules["torchvision.ops.boxes"], "_maskwatch"):
        return
    tv = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")
    boxes = types.ModuleType("torchvision.ops.boxes")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    boxes.batched_nms = batched_nms
    boxes._maskwatch = True
    functional.to_tensor = to_tensor
    tv.ops, ops.boxes, tv.transforms, transforms.functional = ops, boxes, transforms, functional
    sys.modules.update({"torchvision": tv, "torchvision.ops": ops, "torchvision.ops.boxes": boxes,
                        "torchvision.transforms": transforms,
                        "torchvision.transforms.functional": functional})


def wheel_dir() -> Path:
    """Download (once) and unzip the wheel; -> the folder to put on sys.path."""
    target = CACHE / f"facenet_pytorch-{VERSION}"
    if (target / "facenet_pytorch" / "models" / "mtcnn.py").exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    wheel = CACHE / f"facenet_pytorch-{VERSION}-py3-none-any.whl"
    if not wheel.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", f"facenet-pytorch=={VERSION}",
                        "--no-deps", "-d", str(CACHE)], check=True)
    with zipfile.ZipFile(wheel) as z:
        z.extractall(target)
    return target


def load_mtcnn(device: str = "cpu", min_face: int = 20):
    """-> facenet_pytorch.MTCNN(keep_all=True, min_face_size=min_face) on device, default
    thresholds (0.6, 0.7, 0.7) and factor 0.709, as most people run it."""
    _install_standins()
    path = str(wheel_dir())
    if path not in sys.path:
        sys.path.insert(0, path)
    from facenet_pytorch.models.mtcnn import MTCNN  # noqa: E402
    return MTCNN(keep_all=True, min_face_size=min_face, device=torch.device(device))


def detect(mtcnn, image_rgb: np.ndarray):
    """-> (boxes float32 [N,4], probs [N]); empty arrays when none."""
    boxes, probs = mtcnn.detect(image_rgb)
    if boxes is None:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    return np.asarray(boxes, np.float32), np.asarray(probs, np.float32)


def detect_batch(mtcnn, images_rgb: list[np.ndarray]):
    """Same-size frames in one call (facenet's batched path) -> list of (boxes, probs)."""
    boxes, probs = mtcnn.detect(np.stack(images_rgb))
    out = []
    for b, p in zip(boxes, probs):
        if b is None:
            out.append((np.zeros((0, 4), np.float32), np.zeros(0, np.float32)))
        else:
            out.append((np.asarray(b, np.float32), np.asarray(p, np.float32)))
    return out
