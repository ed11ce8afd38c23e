"""Where the tests find the shared training data (one DATA, from training.paths) and dlib's boxed faces."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from training.paths import DATA, ROOT

__all__ = ["DATA", "DLIB", "ROOT", "dlib_boxes"]

DLIB = DATA / "scenes" / "dlib_faces"


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
