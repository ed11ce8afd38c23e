"""Batched crop-and-resize of many boxes from one image, as one tensor op (no per-box loop).

Used for the R-Net (24 px), O-Net (48 px) and classifier (64 px) inputs, on CPU or GPU.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def image_to_tensor(image_rgb, device: torch.device | str = "cpu") -> torch.Tensor:
    """HxWx3 uint8 RGB numpy array -> float32 [1, 3, H, W] of raw pixel values (0..255)."""
    t = torch.from_numpy(image_rgb).to(device)
    return t.permute(2, 0, 1).unsqueeze(0).float()


def crop_and_resize(image: torch.Tensor, boxes: torch.Tensor, size: int,
                    max_supersample: int = 4) -> torch.Tensor:
    """Sample each box out of the image at size x size, area-averaged.

    image: float [1, C, H, W] raw pixels; boxes: float [N, 4] x1,y1,x2,y2 in pixels, may reach
    outside the image (outside reads as 0, i.e. black, as the original zero padding).
    Returns float [N, C, size, size]. Each output pixel averages k x k bilinear samples,
    k = ceil(box side / size) capped at max_supersample, which approximates area
    interpolation when a large face is shrunk, and is plain bilinear when it is enlarged.
    """
    n = boxes.shape[0]
    _, c, h, w = image.shape
    if n == 0:
        return image.new_zeros((0, c, size, size))
    side = float(torch.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]).max())
    k = int(min(max(1, math.ceil(side / size)), max_supersample))
    out = size * k
    # Pixel-centre sampling: output pixel i covers [x1 + i*bw/out, x1 + (i+1)*bw/out).
    steps = (torch.arange(out, device=boxes.device, dtype=boxes.dtype) + 0.5) / out
    xs = boxes[:, 0:1] + steps[None, :] * (boxes[:, 2:3] - boxes[:, 0:1])   # [N, out]
    ys = boxes[:, 1:2] + steps[None, :] * (boxes[:, 3:4] - boxes[:, 1:2])
    # Normalise to grid_sample's [-1, 1] with align_corners=False: pixel j spans [j, j+1).
    gx = xs / w * 2 - 1
    gy = ys / h * 2 - 1
    grid = torch.stack([gx[:, None, :].expand(n, out, out), gy[:, :, None].expand(n, out, out)], dim=-1)
    crops = F.grid_sample(image.expand(n, -1, -1, -1) if image.shape[0] == 1 else image,
                          grid.to(image.dtype), mode="bilinear", padding_mode="zeros",
                          align_corners=False)
    if k > 1:
        crops = F.avg_pool2d(crops, k)
    return crops
