"""MaskWatch engine: MTCNN face detection + a small mask classifier, in torch.

Import cost is kept low: torch and the models load only when an engine is created.
"""
from pipeline.records import CLASSES, Detection, count_labels

__all__ = ["CLASSES", "Detection", "count_labels"]
