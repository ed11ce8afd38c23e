"""pipeline.media.draw.annotate: box tags stay readable when a large image is shown small."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.media.draw import annotate
from pipeline.records import Detection

SHOWN = 700          # px: the width a page shows a photo at (a column of the wide layout)


def _face(side: int) -> Detection:
    """A face in the middle of a side x side image, a fifth of its width."""
    s = side / 10
    return Detection(box=(4 * s, 4 * s, 6 * s, 6 * s), score=0.99, label="no_mask",
                     probs=(("mask", 0.02), ("no_mask", 0.97), ("incorrect", 0.01)))


def _text(out: np.ndarray) -> tuple[int, int, int, int]:
    """Extent of the white tag text on a black image with coloured boxes: rows, columns and
    the left and right column."""
    rows, cols = np.nonzero(np.all(out >= 200, axis=-1))
    assert rows.size, "no tag text drawn"
    return (int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1),
            int(cols.min()), int(cols.max()))


@pytest.mark.parametrize("side", [480, 700, 1400, 4000])
def test_tag_is_readable_at_the_size_shown(side):
    det = _face(side)
    out = annotate(np.zeros((side, side, 3), np.uint8), [det])
    h = _text(out)[0]
    shown = h * min(1.0, SHOWN / side)             # text height on screen, px
    assert shown >= 9, (side, h, shown)           # before: under 2 px for a 4000 px photo


def test_tag_and_lines_scale_with_the_image():
    small, large = _face(1000), _face(4000)
    h_small, w_small = _text(annotate(np.zeros((1000, 1000, 3), np.uint8), [small]))[:2]
    h_large, w_large = _text(annotate(np.zeros((4000, 4000, 3), np.uint8), [large]))[:2]
    assert 3.5 <= h_large / h_small <= 4.5, (h_small, h_large)     # before: about 2.4
    assert 3.5 <= w_large / w_small <= 4.5, (w_small, w_large)


def test_tag_stays_inside_the_image_at_the_right_edge():
    img = np.zeros((600, 800, 3), np.uint8)
    det = Detection(box=(760, 300, 798, 340), score=0.99, label="mask",
                    probs=(("mask", 0.97), ("no_mask", 0.02), ("incorrect", 0.01)))
    out = annotate(img, [det])
    _, w, left, right = _text(out)
    assert w > 40                                  # 'mask 97%' is wider than the face box
    assert right < 799 and left < 760              # moved left rather than cut at the edge


def test_input_is_not_changed_and_small_images_still_work():
    img = np.full((60, 80, 3), 30, np.uint8)
    before = img.copy()
    out = annotate(img, [Detection(box=(20, 20, 50, 50), label="incorrect",
                                   probs=(("mask", 0.1), ("no_mask", 0.1), ("incorrect", 0.8)))],
                   show_landmarks=True)
    assert np.array_equal(img, before) and out.shape == img.shape and not np.array_equal(out, img)
