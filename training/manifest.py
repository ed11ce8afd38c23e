"""Write weights/manifest.json: the sha256 and size of every file the app loads.

pipeline.engine.weights checks every downloaded or local weight file against this committed manifest,
so a tampered or truncated file is refused. Run after any change to weights/.

usage: python -m training.manifest [--weights DIR]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.engine.weights import sha256_file
from training.paths import WEIGHTS

NET_FILES = ("config.json", "model.safetensors")


def build_manifest(weights: Path = WEIGHTS) -> dict:
    files = {}   # each net folder: <net>/ or <detector weight set>/<net>/ (e.g. camera/rnet/)
    for f in sorted(p for name in NET_FILES for p in [*weights.glob(f"*/{name}"), *weights.glob(f"*/*/{name}")]):
        files[f.relative_to(weights).as_posix()] = {"sha256": sha256_file(f), "size": f.stat().st_size}
    total = sum(v["size"] for k, v in files.items() if k.endswith(".safetensors"))
    return {"files": files, "total_weight_bytes": total}


def write_manifest(weights: Path = WEIGHTS) -> Path:
    out = weights / "manifest.json"
    out.write_text(json.dumps(build_manifest(weights), indent=2, sort_keys=True) + "\n")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=WEIGHTS)
    a = ap.parse_args(argv)
    print(f"wrote {write_manifest(a.weights)}")


if __name__ == "__main__":
    main()
