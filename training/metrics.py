"""Classification metrics for the mask classifier, from a confusion matrix (rows true, cols
predicted, pipeline.records.CLASSES order). No dependencies beyond numpy."""
from __future__ import annotations

import numpy as np

from pipeline.records import CLASSES, MASK_INDEX


def confusion_matrix(y_true, y_pred, num_classes: int = len(CLASSES)) -> np.ndarray:
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def _div(a, b):
    return float(a) / float(b) if b else 0.0


def metrics_from_cm(cm, classes=CLASSES) -> dict:
    """Per-class precision/recall/F1 (0 where undefined) and support, accuracy, macro-F1 and
    binary accuracy (mask vs the rest). Macro-F1 is the unweighted mean of the per-class F1 over
    the classes that occur in the truth or the predictions (as sklearn's f1_score(average=
    "macro")), so a subset without, say, `incorrect` faces is not scored down for it; a class
    predicted but absent counts with F1 0."""
    cm = np.asarray(cm)
    cm = cm.astype(np.int64) if np.issubdtype(cm.dtype, np.integer) else cm.astype(np.float64)
    n = cm.sum()
    tp = np.diag(cm)
    per = {}
    for k, c in enumerate(classes):
        p = _div(tp[k], cm[:, k].sum())
        r = _div(tp[k], cm[k, :].sum())
        per[c] = {"precision": p, "recall": r, "f1": _div(2 * p * r, p + r),
                  "support": int(cm[k, :].sum()) if cm.dtype == np.int64 else float(cm[k, :].sum())}
    pos = MASK_INDEX   # the binary view: mask against not mask (no_mask + incorrect)
    bin_correct = cm[pos, pos] + np.delete(np.delete(cm, pos, 0), pos, 1).sum()
    return {
        "n": int(n) if cm.dtype == np.int64 else float(n),
        "confusion_matrix": cm.tolist(),
        "per_class": per,
        "accuracy": _div(tp.sum(), n),
        "macro_f1": float(np.mean([per[c]["f1"] for k, c in enumerate(classes)
                                   if cm[k, :].sum() or cm[:, k].sum()] or [0.0])),
        "binary_accuracy": _div(bin_correct, n),
    }


def evaluate(y_true, y_pred, classes=CLASSES) -> dict:
    return metrics_from_cm(confusion_matrix(y_true, y_pred, len(classes)), classes)


def majority_baseline(y_true, classes=CLASSES) -> dict:
    """Metrics of always predicting the most frequent true class; plus binary_majority_accuracy,
    the binary accuracy of always answering the more frequent of mask / not-mask."""
    y_true = np.asarray(y_true, np.int64)
    if len(y_true) == 0:
        return metrics_from_cm(np.zeros((len(classes),) * 2, np.int64), classes)
    major = int(np.bincount(y_true, minlength=len(classes)).argmax())
    out = evaluate(y_true, np.full_like(y_true, major), classes)
    out["predicts"] = classes[major]
    share = float(np.mean(y_true == MASK_INDEX))
    out["binary_majority_accuracy"] = max(share, 1 - share)
    return out


def summary(m: dict) -> str:
    rec = " ".join(f"{c}={v['recall']:.3f}" for c, v in m["per_class"].items())
    return (f"n={m['n']} acc={m['accuracy']:.4f} bin_acc={m['binary_accuracy']:.4f} "
            f"macroF1={m['macro_f1']:.4f} recall[{rec}]")
