"""Convert the original MTCNN weights (facenet-pytorch's P/R/O-Net state dicts, MIT) into
MaskWatch's weights/ layout: one folder per net with config.json + model.safetensors.

The original R-Net and O-Net dense layers expect features flattened after permute(0, 3, 2, 1)
(Caffe's W, H, C order). Our nets flatten in PyTorch's (C, H, W) order, so the dense weights'
input columns are reordered here once, and inference needs no permute.

usage: python -m training.convert_mtcnn [--src DIR] [--out weights]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from pipeline.engine.nets import ONet, PNet, RNet
from pipeline.engine.weights import save_net
from training.paths import DATA, WEIGHTS

SOURCE_NOTE = ("facenet-pytorch 2.6.0 (MIT), original MTCNN weights (their dense layers take the feature map "
               "flattened in CHW order: converted by training.convert_mtcnn)")

SRC = DATA / "pretrained" / "mtcnn_original"
OUT = WEIGHTS

# net name -> (class, dense layer fed by the conv features, that feature map's (C, H, W))
NETS = {
    "pnet": (PNet, None, None),
    "rnet": (RNet, "dense4", (64, 3, 3)),
    "onet": (ONet, "dense5", (128, 3, 3)),
}


def caffe_dense_to_torch(weight: torch.Tensor, chw: tuple[int, int, int]) -> torch.Tensor:
    """Dense weight [out, W*H*C] (Caffe flatten order) -> [out, C*H*W] (PyTorch order)."""
    c, h, w = chw
    return weight.reshape(weight.shape[0], w, h, c).permute(0, 3, 2, 1).reshape(weight.shape[0], -1)


def convert_state_dict(name: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original state dict -> ours (same keys; dense input columns reordered)."""
    _, dense, chw = NETS[name]
    out = {k: v.detach().float().contiguous() for k, v in state.items()}
    if dense:
        out[f"{dense}.weight"] = caffe_dense_to_torch(out[f"{dense}.weight"], chw).contiguous()
    return out


def convert(src: Path = SRC, out: Path = OUT) -> list[Path]:
    """Write out/<net>/{config.json, model.safetensors} for pnet, rnet, onet. Returns folders."""
    folders = []
    for name, (cls, _, _) in NETS.items():
        state = torch.load(src / f"{name}.pt", map_location="cpu", weights_only=True)
        converted = convert_state_dict(name, state)
        net = cls()
        net.load_state_dict(converted, strict=True)   # proves the keys and shapes match
        folders.append(save_net(net, out / name, source=SOURCE_NOTE))
    return folders


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=SRC)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    for f in convert(a.src, a.out):
        print(f"wrote {f}")
    print("now run: python -m training.manifest  (to refresh weights/manifest.json)")


if __name__ == "__main__":
    main()
