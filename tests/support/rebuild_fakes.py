"""Stand-ins for training.rebuild's steps that must be importable by name: a spawned process
(rebuild.PARALLEL) runs them, and it sees no monkeypatch of the test's process."""
from __future__ import annotations

import json
import os
from pathlib import Path


def fake_camera_detector(out: Path, seed: int, progress: bool, data: Path) -> dict:
    """Writes a camera detector folder as rebuild.camera_detector does; records its process id."""
    out = Path(out)
    for n in ("pnet", "rnet", "onet"):
        (out / n).mkdir(parents=True, exist_ok=True)
        (out / n / "config.json").write_text("{}")
        (out / n / "model.safetensors").write_bytes(f"spawned camera {n}".encode())
    summary = {"release_ok": True, "dlib_recall": 0.97, "faces_on_dogs": 0, "pid": os.getpid(), "seed": seed}
    (out / "summary.json").write_text(json.dumps(summary))
    return summary
