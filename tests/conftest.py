"""Shared fixtures: paths to the shared data, the engine loaded once per session."""
from __future__ import annotations

import os

# Before torch loads: with OpenMP's default busy-wait, 2-thread torch slows up to 10x when the
# other core is busy (browser, server, another process). The app sets the same.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MASKWATCH_DATA", ROOT.parent / "shared" / "data"))
DLIB = DATA / "scenes" / "dlib_faces"
sys.path.insert(0, str(ROOT))


def dlib_boxes() -> dict[str, list[list[float]]]:
    """image file -> face boxes [x1,y1,x2,y2] from dlib's training.xml and testing.xml."""
    out: dict[str, list[list[float]]] = {}
    for xml in ("training.xml", "testing.xml"):
        for img in ET.parse(DLIB / xml).getroot().iter("image"):
            boxes = out.setdefault(img.get("file"), [])
            for b in img.iter("box"):
                if b.get("ignore") == "1":
                    continue
                x, y, w, h = (float(b.get(k)) for k in ("left", "top", "width", "height"))
                boxes.append([x, y, x + w, y + h])
    return out


@pytest.fixture(scope="session")
def engine():
    from pipeline.engine.mask_detector import MaskDetector
    return MaskDetector.load(device="cpu")


@pytest.fixture(scope="session")
def detector_nets(tmp_path_factory):
    """P/R/O-Net with the ORIGINAL MTCNN weights, converted afresh by training.convert_mtcnn
    (weights/ may hold fine-tuned detector weights, which the conversion tests must not see)."""
    from pipeline.engine.weights import load_net
    from training.convert_mtcnn import convert
    folder = tmp_path_factory.mktemp("converted_mtcnn")
    convert(DATA / "pretrained" / "mtcnn_original", folder)
    return {n: load_net(n, folder) for n in ("pnet", "rnet", "onet")}


@pytest.fixture(scope="session")
def original_weights():
    import torch
    src = DATA / "pretrained" / "mtcnn_original"
    return {n: torch.load(src / f"{n}.pt", map_location="cpu", weights_only=True) for n in ("pnet", "rnet", "onet")}
