"""training.error_sheet: which faces count as wrong, the window shown, the sheet's layout."""
from __future__ import annotations

import numpy as np

from training.error_sheet import CAPTION, TILE, contact_sheet, face_window, wrong


def test_wrong_faces_all_classes_and_mask_vs_not():
    # classes: 0 mask, 1 no_mask, 2 incorrect
    y = np.array([0, 0, 1, 2, 2, 1])
    probs = np.eye(3)[[0, 1, 2, 1, 0, 1]]
    assert wrong(y, probs).tolist() == [1, 2, 3, 4]
    # no_mask <-> incorrect swaps are not mask-vs-not mistakes
    assert wrong(y, probs, binary=True).tolist() == [1, 4]


def test_face_window_is_clipped_square_around_the_box():
    img = np.zeros((100, 200, 3), np.uint8)
    assert face_window(img, [90, 40, 110, 60]).shape == (32, 32, 3)   # 1.6 x 20 px
    assert face_window(img, [0, 0, 20, 30]).shape == (39, 34, 3)      # side 48, cut at the corner
    assert face_window(img, [-50, -50, -40, -40]).shape[:2] == (1, 1)  # never empty


def test_contact_sheet_layout():
    tiles = [np.full((30, 20, 3), 10 * k, np.uint8) for k in range(12)]
    sheet = contact_sheet(tiles, [str(k) for k in range(12)], cols=5)
    assert sheet.shape == (3 * (TILE + CAPTION), 5 * TILE, 3)
    assert (sheet[2 * (TILE + CAPTION):, 2 * TILE:] == 255).all()     # 3 empty cells
    assert sheet[TILE // 2, TILE + TILE // 2].tolist() == [10, 10, 10]
    assert contact_sheet([], []).shape == (TILE + CAPTION, 10 * TILE, 3)
