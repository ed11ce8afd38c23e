"""Near-duplicate groups and the group-aware stratified split, for both stages.

Duplicates: a dHash (9x8 grayscale, 64 bits) of every image, and of its mirror for crop
datasets; images within `DUP_HAMMING` bits share a group. A split never puts one group on both
sides, so near-copies cannot leak from training into validation.
"""
from __future__ import annotations

import cv2
import numpy as np

from pipeline.records import CLASSES

DUP_HAMMING = 6
"""dHash Hamming distance at or below which two images count as duplicates."""



def dhash(rgb: np.ndarray) -> int:
    """64-bit difference hash of a 9x8 grayscale thumbnail."""
    g = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (9, 8), interpolation=cv2.INTER_AREA)
    bits = (g[:, 1:] > g[:, :-1]).flatten()
    return int(np.packbits(bits).view(">u8")[0])


def duplicate_groups(hashes, mirror_hashes=None, max_dist: int = DUP_HAMMING) -> np.ndarray:
    """Union-find over images whose hashes (or one's hash and the other's mirror hash) are within
    max_dist bits. -> int64 [N] group id per image (the smallest member index)."""
    h = np.asarray(hashes, np.uint64)
    n = len(h)
    parent = np.arange(n)

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    variants = [h] if mirror_hashes is None else [h, np.asarray(mirror_hashes, np.uint64)]
    for start in range(0, n, 1024):
        block = h[start:start + 1024]
        close = np.zeros((len(block), n), bool)
        for v in variants:
            close |= np.bitwise_count(block[:, None] ^ v[None, :]) <= max_dist
        for bi, j in zip(*np.nonzero(close)):
            a, b = find(start + bi), find(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return np.array([find(i) for i in range(n)], np.int64)




def stratified_group_split(labels: np.ndarray, groups: np.ndarray, val_frac: float, seed: int,
                           num_classes: int = len(CLASSES)) -> np.ndarray:
    """Faces -> bool [N], True for validation. Whole groups go to one side; groups are visited in
    a seeded random order and put into validation while that keeps every class's validation count
    within its target (val_frac of the class's faces, plus a little slack)."""
    labels = np.asarray(labels)
    groups = np.asarray(groups)
    uniq, inv = np.unique(groups, return_inverse=True)
    counts = np.zeros((len(uniq), num_classes), np.int64)
    np.add.at(counts, (inv, labels), 1)
    target = counts.sum(0) * val_frac
    val_counts = np.zeros(num_classes)
    in_val = np.zeros(len(uniq), bool)
    for g in np.random.default_rng(seed).permutation(len(uniq)):
        c = counts[g]
        if np.all(val_counts + c <= target * 1.02 + 1):
            in_val[g] = True
            val_counts += c
    return in_val[inv]
