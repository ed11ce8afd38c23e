"""Images to tensors, and batched crop-and-resize of many boxes, as tensor ops (no per-box loop).

image_to_tensor: the one conversion of HxWx3 uint8 images (or batches) to float tensors.
crop_and_resize (one image) and crop_and_resize_batch (many): the classifier (64 px) crops,
bilinear with supersampling. area_pyramid, integral_image and area_crops: the detector's
pyramid levels and R-Net (24 px) / O-Net (48 px) crops, exact area averaging as the reference
MTCNN, for one image or a batch of same-size images. All run on CPU or GPU.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def image_to_tensor(image_rgb, device: torch.device | str | None = None) -> torch.Tensor:
    """HxWx3 (or BxHxWx3) uint8 RGB, numpy or tensor -> float32 [1, 3, H, W] ([B, 3, H, W])
    of raw pixel values (0..255), on `device` (default: where it is). The one image-to-tensor
    conversion of the pipeline."""
    t = torch.as_tensor(np.ascontiguousarray(image_rgb) if isinstance(image_rgb, np.ndarray) else image_rgb)
    if device is not None:
        t = t.to(device)
    t = t.unsqueeze(0) if t.dim() == 3 else t
    return t.permute(0, 3, 1, 2).float()


def supersampling(side, size: int, max_supersample: int = 4) -> int:
    """crop_and_resize's samples per output pixel and axis for a largest box side `side`:
    ceil(side / size), at least 1, at most max_supersample."""
    return int(min(max(1, math.ceil(float(side) / size)), max_supersample))


def _sampling_grid(boxes: torch.Tensor, out: int, height: int, width: int, dtype) -> torch.Tensor:
    """Pixel-centre sample points of each box at out x out, in grid_sample's [-1, 1] coordinates
    (align_corners=False: pixel j spans [j, j+1)) -> [N, out, out, 2]. Output pixel i covers
    [x1 + i*bw/out, x1 + (i+1)*bw/out)."""
    n = boxes.shape[0]
    steps = (torch.arange(out, device=boxes.device, dtype=boxes.dtype) + 0.5) / out
    xs = boxes[:, 0:1] + steps[None, :] * (boxes[:, 2:3] - boxes[:, 0:1])   # [N, out]
    ys = boxes[:, 1:2] + steps[None, :] * (boxes[:, 3:4] - boxes[:, 1:2])
    gx = xs / width * 2 - 1
    gy = ys / height * 2 - 1
    return torch.stack([gx[:, None, :].expand(n, out, out), gy[:, :, None].expand(n, out, out)],
                       dim=-1).to(dtype)


def supersample_factor(boxes: torch.Tensor, size: int, max_supersample: int = 4) -> int:
    """crop_and_resize's k for these boxes [N,4]: ceil(largest box side / size), 1..max_supersample."""
    if boxes.shape[0] == 0:
        return 1
    return supersampling(torch.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]).max(), size,
                         max_supersample)


def crop_and_resize(image: torch.Tensor, boxes: torch.Tensor, size: int,
                    max_supersample: int = 4, supersample: int | None = None) -> torch.Tensor:
    """Sample each box out of the image at size x size, area-averaged.

    image: float [1, C, H, W] raw pixels; boxes: float [N, 4] x1,y1,x2,y2 in pixels, may reach
    outside the image (outside reads as 0, i.e. black, as the original zero padding).
    Returns float [N, C, size, size] (channels_last memory). Each output pixel averages k x k bilinear samples,
    k = ceil(box side / size) capped at max_supersample, which approximates area
    interpolation when a large face is shrunk, and is plain bilinear when it is enlarged.
    supersample: k given by the caller (supersample_factor of a larger set of boxes, so that the
    boxes cropped in chunks come out exactly as when cropped all at once).
    """
    n = boxes.shape[0]
    _, c, h, w = image.shape
    if n == 0:
        return image.new_zeros((0, c, size, size))
    k = supersample or supersample_factor(boxes, size, max_supersample)
    grid = _sampling_grid(boxes, size * k, h, w, image.dtype)
    crops = F.grid_sample(image.expand(n, -1, -1, -1) if image.shape[0] == 1 else image,
                          grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if k > 1:
        crops = F.avg_pool2d(crops, k)
    # same values; channels_last memory makes the classifier's convolutions ~2x faster on CPU
    return crops.contiguous(memory_format=torch.channels_last)


def crop_and_resize_batch(images: torch.Tensor, boxes: torch.Tensor, image_index: torch.Tensor,
                          size: int, k_per_image: list[int]) -> torch.Tensor:
    """crop_and_resize for many images at once, one grid_sample per distinct supersampling
    factor k (k is per image, as when each image is cropped on its own).

    images float [B,3,H,W] raw pixels; boxes [N,4] grouped by image, in image order;
    image_index int64 [N]; k_per_image [B] -> crops [N,3,size,size] (channels_last), equal to
    crop_and_resize on each image."""
    n = boxes.shape[0]
    b, c, H, W = images.shape
    out = torch.empty((n, c, size, size), device=images.device, dtype=images.dtype)
    if n == 0:
        return out
    dev = boxes.device
    image_index = image_index.to(dev)
    ks = torch.as_tensor(k_per_image, device=dev)[image_index]
    # each box's rank among its image's boxes
    counts = torch.bincount(image_index, minlength=b)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(n, device=dev) - starts[image_index]
    for k in sorted(set(int(v) for v in k_per_image)):
        sel = torch.nonzero(ks == k).flatten()
        if sel.numel() == 0:
            continue
        imgs_k = torch.unique(image_index[sel])
        slot_of = torch.full((b,), -1, dtype=torch.long, device=dev)
        slot_of[imgs_k] = torch.arange(len(imgs_k), device=dev)
        gi, ri = slot_of[image_index[sel]], rank[sel]
        g, maxf, o = len(imgs_k), int(counts[imgs_k].max()), size * k
        # every box of an image in one tall grid: [G, maxf * o, o, 2]; unused rows sample outside
        grid = torch.full((g, maxf, o, o, 2), 2.0, device=dev, dtype=images.dtype)
        grid[gi, ri] = _sampling_grid(boxes[sel], o, H, W, images.dtype)
        sampled = F.grid_sample(images[imgs_k], grid.view(g, maxf * o, o, 2), mode="bilinear",
                                padding_mode="zeros", align_corners=False)       # [G,C,maxf*o,o]
        sampled = sampled.view(g, c, maxf, o, o).permute(0, 2, 1, 3, 4)[gi, ri]  # [n_k,C,o,o]
        if k > 1:
            sampled = F.avg_pool2d(sampled, k)
        out[sel] = sampled
    return out.contiguous(memory_format=torch.channels_last)


# -- exact area resampling, as the reference MTCNN (torch "area" interpolation) -------------------
# F.interpolate(mode="area") is adaptive average pooling: output row i of n_out averages input
# rows floor(i * n_in / n_out) .. ceil((i + 1) * n_in / n_out) - 1 (whole pixels, plain mean),
# and the same for columns. Sums over those windows are differences of cumulative sums, so a
# level or a crop costs a few gathers instead of a pass over every source pixel per output.

def _window_bounds(n_in: torch.Tensor | int, n_out: int, device=None):
    """Adaptive-pool windows for lengths n_in (int, or int64 [N]) -> (start, end) [.., n_out]."""
    i = torch.arange(n_out + 1, dtype=torch.int64, device=device)
    if isinstance(n_in, int):
        return (i[:-1] * n_in) // n_out, -((-i[1:] * n_in) // n_out)
    return (i[None, :-1] * n_in[:, None]) // n_out, -((-i[None, 1:] * n_in[:, None]) // n_out)


def area_pyramid(image_rgb, sizes: list[tuple[int, int]], device: torch.device | str = "cpu",
                 integral: torch.Tensor | None = None,
                 rows: list[tuple[int, int] | None] | None = None) -> list[torch.Tensor]:
    """Area-resize one HxWx3 uint8 RGB image (numpy or tensor) to every (h, w) in sizes.

    -> float32 [1, 3, h, w] raw pixel values, channels_last memory (an HxWx3 block), equal (to
    float rounding) to F.interpolate(image, (h, w), mode="area") as the reference does it, from
    the full image at every level. On CPU every window sum is 4 lookups in the image's
    integral_image (pass it in when it is already made): two row gathers, two column gathers
    per level - a fraction of the cost of adaptive pooling. On CUDA: F.interpolate itself.
    rows: optionally, per size, (first, end) level rows to make (a strip of the level).
    A batch of same-size images BxHxWx3 (with its integral_image [B,H+1,W+1,3]) gives
    [B, 3, h, w] levels.
    """
    rows = rows or [None] * len(sizes)
    img = torch.as_tensor(image_rgb, device=device)
    if img.device.type != "cpu":
        x = image_to_tensor(img)
        out = [F.interpolate(x, size=s, mode="area").contiguous(memory_format=torch.channels_last)
               for s in sizes]
        return [o if r is None else o[:, :, r[0]:r[1]] for o, r in zip(out, rows)]
    if img.dim() == 4:
        per = [area_pyramid(f, sizes, device, None if integral is None else integral[i], rows)
               for i, f in enumerate(img)]
        return [torch.cat([p[k] for p in per]) for k in range(len(sizes))]
    H, W = img.shape[:2]
    ii = integral_image(img) if integral is None else integral
    out = []
    for (h, w), r in zip(sizes, rows):
        r0, r1 = _window_bounds(H, h)
        c0, c1 = _window_bounds(W, w)
        if r is not None:
            r0, r1 = r0[r[0]:r[1]], r1[r[0]:r[1]]
        band = ii.index_select(0, r1) - ii.index_select(0, r0)       # [h', W+1, 3] row sums, integrated
        sums = (band.index_select(1, c1) - band.index_select(1, c0)).to(torch.float32)
        inv = 1.0 / ((r1 - r0)[:, None] * (c1 - c0)[None, :]).to(torch.float32)
        out.append(sums.mul_(inv[:, :, None]).permute(2, 0, 1).unsqueeze(0))
    return out


def integral_image(image_rgb, device: torch.device | str = "cpu") -> torch.Tensor:
    """HxWx3 uint8 RGB (numpy or tensor) -> summed-area table [H+1, W+1, 3] (int32, or int64
    when the image is too large for int32 sums): I[y, x] = sum of pixels above and left.
    A batch BxHxWx3 of same-size images -> [B, H+1, W+1, 3]."""
    img = torch.as_tensor(image_rgb, device=device)
    H, W = img.shape[-3:-1]
    dtype = torch.int32 if H * W * 255 < 2 ** 31 else torch.int64
    if img.device.type == "cpu" and dtype == torch.int32:
        import cv2
        if img.dim() == 4:
            return torch.stack([integral_image(f) for f in img])
        return torch.from_numpy(cv2.integral(np.ascontiguousarray(img.numpy())))
    out = torch.zeros((*img.shape[:-3], H + 1, W + 1, 3), dtype=dtype, device=img.device)
    out[..., 1:, 1:, :] = img.to(dtype).cumsum(-3, dtype=dtype).cumsum(-2, dtype=dtype)
    return out


def area_crops(integral: torch.Tensor, boxes: torch.Tensor, size: int, clip: bool = True,
               image_index: torch.Tensor | None = None) -> torch.Tensor:
    """Cut and area-resize many boxes at once from one image's integral_image.

    boxes: [N,4] float pixels x1,y1,x2,y2 (MTCNN stage boxes). As the reference (facenet-pytorch
    detect_face: pad + imresample), each box is truncated to whole pixels, the crop is pixels
    x1-1 .. x2-1 and y1-1 .. y2-1 (0-based, inclusive); with clip=True it is clamped to the image
    first (a box over the edge is squeezed into size x size, as the reference does), with
    clip=False the outside reads black (the original MTCNN's zero padding). Then adaptive
    average pooling to size x size, exactly. An empty crop is black.
    Returns float32 [N, 3, size, size] raw pixels, channels_last memory.
    Batched: integral [B, H+1, W+1, 3] (same-size images) and image_index int64 [N], the image
    of each box.
    """
    n = boxes.shape[0]
    H, W = integral.shape[-3] - 1, integral.shape[-2] - 1
    dev = integral.device
    if n == 0:
        return torch.zeros((0, 3, size, size), device=dev)
    b = boxes.trunc().to(torch.int64)
    x, y, ex, ey = b.unbind(1)
    if clip:
        x, y = x.clamp(min=1), y.clamp(min=1)
        ex, ey = ex.clamp(max=W), ey.clamp(max=H)
    hb, wb = ey - y + 1, ex - x + 1
    empty = (hb <= 0) | (wb <= 0)
    hb, wb = hb.clamp(min=1), wb.clamp(min=1)
    r0, r1 = _window_bounds(hb, size, dev)
    c0, c1 = _window_bounds(wb, size, dev)
    r0, r1 = r0 + (y - 1)[:, None], r1 + (y - 1)[:, None]
    c0, c1 = c0 + (x - 1)[:, None], c1 + (x - 1)[:, None]
    area = ((r1 - r0)[:, :, None] * (c1 - c0)[:, None, :]).to(torch.float32)
    r0, r1, c0, c1 = r0.clamp(0, H), r1.clamp(0, H), c0.clamp(0, W), c1.clamp(0, W)
    flat = integral.reshape(-1, 3)
    stride = W + 1
    if image_index is not None:
        base = (image_index.to(torch.int64) * ((H + 1) * stride))[:, None]
        r0, r1 = r0 * stride + base, r1 * stride + base
    else:
        r0, r1 = r0 * stride, r1 * stride
    R0, R1 = r0[:, :, None], r1[:, :, None]
    C0, C1 = c0[:, None, :], c1[:, None, :]

    def g(idx):
        return flat.index_select(0, idx.reshape(-1)).view(n, size, size, 3)

    s = (g(R1 + C1) - g(R0 + C1)).sub_(g(R1 + C0)).add_(g(R0 + C0)).to(torch.float32)
    s.div_(area[..., None])
    s.masked_fill_(empty[:, None, None, None], 0)   # no host sync
    return s.permute(0, 3, 1, 2)
