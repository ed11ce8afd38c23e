"""A plain, unoptimised re-statement of the original MTCNN algorithm (Zhang et al. 2016, as
the widely used PyTorch port runs it), driving the ORIGINAL weight files directly:
Caffe-order dense layers (features permuted to W,H,C before flattening), area-interpolated
pyramid and crops, one crop at a time. Tests compare pipeline.engine.cascade against it, so that
the conversion and the optimised detector are both proven.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.engine.boxes import nms


def _prelu(x, w):
    return F.prelu(x, w)


def pnet(sd, x):
    x = F.max_pool2d(_prelu(F.conv2d(x, sd["conv1.weight"], sd["conv1.bias"]), sd["prelu1.weight"]), 2, 2, ceil_mode=True)
    x = _prelu(F.conv2d(x, sd["conv2.weight"], sd["conv2.bias"]), sd["prelu2.weight"])
    x = _prelu(F.conv2d(x, sd["conv3.weight"], sd["conv3.bias"]), sd["prelu3.weight"])
    prob = torch.softmax(F.conv2d(x, sd["conv4_1.weight"], sd["conv4_1.bias"]), 1)
    return F.conv2d(x, sd["conv4_2.weight"], sd["conv4_2.bias"]), prob


def rnet(sd, x):
    x = F.max_pool2d(_prelu(F.conv2d(x, sd["conv1.weight"], sd["conv1.bias"]), sd["prelu1.weight"]), 3, 2, ceil_mode=True)
    x = F.max_pool2d(_prelu(F.conv2d(x, sd["conv2.weight"], sd["conv2.bias"]), sd["prelu2.weight"]), 3, 2, ceil_mode=True)
    x = _prelu(F.conv2d(x, sd["conv3.weight"], sd["conv3.bias"]), sd["prelu3.weight"])
    x = x.permute(0, 3, 2, 1).contiguous().view(x.shape[0], -1)
    x = _prelu(F.linear(x, sd["dense4.weight"], sd["dense4.bias"]), sd["prelu4.weight"])
    return F.linear(x, sd["dense5_2.weight"], sd["dense5_2.bias"]), torch.softmax(F.linear(x, sd["dense5_1.weight"], sd["dense5_1.bias"]), 1)


def onet(sd, x):
    x = F.max_pool2d(_prelu(F.conv2d(x, sd["conv1.weight"], sd["conv1.bias"]), sd["prelu1.weight"]), 3, 2, ceil_mode=True)
    x = F.max_pool2d(_prelu(F.conv2d(x, sd["conv2.weight"], sd["conv2.bias"]), sd["prelu2.weight"]), 3, 2, ceil_mode=True)
    x = F.max_pool2d(_prelu(F.conv2d(x, sd["conv3.weight"], sd["conv3.bias"]), sd["prelu3.weight"]), 2, 2, ceil_mode=True)
    x = _prelu(F.conv2d(x, sd["conv4.weight"], sd["conv4.bias"]), sd["prelu4.weight"])
    x = x.permute(0, 3, 2, 1).contiguous().view(x.shape[0], -1)
    x = _prelu(F.linear(x, sd["dense5.weight"], sd["dense5.bias"]), sd["prelu5.weight"])
    return (F.linear(x, sd["dense6_2.weight"], sd["dense6_2.bias"]), F.linear(x, sd["dense6_3.weight"], sd["dense6_3.bias"]),
            torch.softmax(F.linear(x, sd["dense6_1.weight"], sd["dense6_1.bias"]), 1))


def _bbreg(b, reg):
    w = b[:, 2] - b[:, 0] + 1
    h = b[:, 3] - b[:, 1] + 1
    out = b.clone()
    out[:, 0] += reg[:, 0] * w; out[:, 1] += reg[:, 1] * h
    out[:, 2] += reg[:, 2] * w; out[:, 3] += reg[:, 3] * h
    return out


def _rerec(b):
    b = b.clone()
    h = b[:, 3] - b[:, 1]; w = b[:, 2] - b[:, 0]
    side = torch.max(w, h)
    b[:, 0] = b[:, 0] + w * 0.5 - side * 0.5
    b[:, 1] = b[:, 1] + h * 0.5 - side * 0.5
    b[:, 2] = b[:, 0] + side; b[:, 3] = b[:, 1] + side
    return b


def _crops(img, boxes, size):
    """Per-box crop with zero padding outside the image, area-resized, like the original."""
    _, _, h, w = img.shape
    out = []
    for b in boxes.trunc().int().tolist():
        x1, y1, x2, y2 = b
        crop = torch.zeros(1, 3, y2 - y1 + 1, x2 - x1 + 1)
        sx1, sy1, sx2, sy2 = max(x1, 1), max(y1, 1), min(x2, w), min(y2, h)
        if sx2 >= sx1 and sy2 >= sy1:
            crop[:, :, sy1 - y1:sy2 - y1 + 1, sx1 - x1:sx2 - x1 + 1] = img[:, :, sy1 - 1:sy2, sx1 - 1:sx2]
        out.append(F.interpolate(crop, size=(size, size), mode="area"))
    return torch.cat(out)


@torch.inference_mode()
def detect(image_rgb: np.ndarray, weights: dict, min_face=20.0, factor=0.709, thr=(0.6, 0.7, 0.7)):
    """-> (boxes [N,4], scores [N], landmarks [N,5,2]) numpy."""
    sdp, sdr, sdo = weights["pnet"], weights["rnet"], weights["onet"]
    img = torch.from_numpy(image_rgb).permute(2, 0, 1).unsqueeze(0).float()
    h, w = image_rgb.shape[:2]
    m = 12.0 / min_face
    minl = min(h, w) * m
    scales, s = [], m
    while minl >= 12:
        scales.append(s); s *= factor; minl *= factor
    cand = []
    for s in scales:
        im = F.interpolate(img, size=(int(h * s + 1), int(w * s + 1)), mode="area")
        reg, prob = pnet(sdp, (im - 127.5) * 0.0078125)
        p = prob[0, 1]
        ys, xs = torch.nonzero(p >= thr[0], as_tuple=True)
        if len(ys) == 0:
            continue
        q1x = torch.floor((2 * xs.float() + 1) / s); q1y = torch.floor((2 * ys.float() + 1) / s)
        q2x = torch.floor((2 * xs.float() + 12) / s); q2y = torch.floor((2 * ys.float() + 12) / s)
        bb = torch.stack([q1x, q1y, q2x, q2y, p[ys, xs]], 1)
        bb = torch.cat([bb, reg[0, :, ys, xs].T], 1)
        cand.append(bb[nms(bb[:, :4], bb[:, 4], 0.5)])
    if not cand:
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
    bb = torch.cat(cand)
    bb = bb[nms(bb[:, :4], bb[:, 4], 0.7)]
    rw = bb[:, 2] - bb[:, 0]; rh = bb[:, 3] - bb[:, 1]
    boxes = torch.stack([bb[:, 0] + bb[:, 5] * rw, bb[:, 1] + bb[:, 6] * rh,
                         bb[:, 2] + bb[:, 7] * rw, bb[:, 3] + bb[:, 8] * rh], 1)
    boxes = _rerec(boxes)
    reg, prob = rnet(sdr, (_crops(img, boxes, 24) - 127.5) * 0.0078125)
    ok = prob[:, 1] > thr[1]
    boxes, score, reg = boxes[ok], prob[ok, 1], reg[ok]
    keep = nms(boxes, score, 0.7)
    boxes = _rerec(_bbreg(boxes[keep], reg[keep]))
    if len(boxes) == 0:
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
    reg, pts, prob = onet(sdo, (_crops(img, boxes, 48) - 127.5) * 0.0078125)
    ok = prob[:, 1] > thr[2]
    boxes, score, reg, pts = boxes[ok], prob[ok, 1], reg[ok], pts[ok]
    wi = boxes[:, 2] - boxes[:, 0] + 1; hi = boxes[:, 3] - boxes[:, 1] + 1
    lx = wi[:, None] * pts[:, :5] + boxes[:, 0:1] - 1
    ly = hi[:, None] * pts[:, 5:] + boxes[:, 1:2] - 1
    boxes = _bbreg(boxes, reg)
    keep = nms(boxes, score, 0.7, mode="min")
    return boxes[keep].numpy(), score[keep].numpy(), torch.stack([lx, ly], 2)[keep].numpy()
