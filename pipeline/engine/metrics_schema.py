"""The schema of weights/metrics.json: one place that both its writer (training.evaluate, read
again by training.model_card) and its reader (pipeline.ui.metrics, the Metrics page) import.

The document is plain JSON; these TypedDicts name every key a reader relies on, with its basic
type. Keys marked NotRequired are optional sections: a writer leaves them out (never writes null)
when it has nothing for them. Documents may carry more keys than named here (the trainers'
reports record more detail than the readers use); `problems` ignores those.

SCHEMA_VERSION goes up whenever a key is renamed, removed or changes meaning; adding an optional
(NotRequired) section does not need a new version. Check a document with `parse` (raises
MetricsSchemaError with a message naming what does not fit) or `problems` (the list).

Adding an optional section (say "calibration"): a TypedDict for it here (fields with their basic
types, a comment each), `calibration: NotRequired[Calibration]` in MetricsDoc; the writer sets
out["calibration"] only when it has one; readers test `"calibration" in doc` and then use plain
keys. Documents written before it stay valid, so SCHEMA_VERSION stays.

No torch and no Streamlit here: standard library only.
"""
# No `from __future__ import annotations`: TypedDict needs NotRequired evaluated at class
# creation to tell required keys from optional ones (Python 3.11).
import types
import typing
from typing import Any, NotRequired, TypedDict

SCHEMA_VERSION = 1
"""The version of the layout below; written as "schema_version" at the top of metrics.json."""

FILENAME = "metrics.json"


# ---------------------------------------------------------------- classifier (training.metrics)


class ClassScores(TypedDict):
    """One class's scores (training.metrics.metrics_from_cm)."""
    precision: float
    recall: float
    f1: float
    support: int  # faces of this class (true label)


class ClassifierScores(TypedDict):
    """Scores of the 3-class classifier on one set of faces (training.metrics.evaluate)."""
    n: int  # faces scored
    confusion_matrix: list[list[int]]  # [3][3] counts, rows true class, columns predicted, in `classes` order
    per_class: dict[str, ClassScores]  # class name -> scores
    accuracy: float  # 3-class accuracy
    macro_f1: float  # unweighted mean of the per-class F1
    binary_accuracy: float  # accuracy of mask vs the rest (no_mask + incorrect)


class MajorityBaseline(ClassifierScores):
    """The same scores for always predicting the most frequent class (training.metrics
    .majority_baseline); the two extra keys are absent when the set is empty."""
    predicts: NotRequired[str]  # the class it always predicts
    # binary accuracy of always answering the more frequent of mask / not mask
    binary_majority_accuracy: NotRequired[float]


class ValidationSet(TypedDict):
    """The released classifier and the majority baseline on one validation set."""
    metrics: ClassifierScores
    majority_baseline: MajorityBaseline


class SizeBucket(ValidationSet):
    """ILC validation faces in one face-size bucket (short side, px)."""
    n_faces: int


class Validation(TypedDict):
    """training.train_classifier.validation_report: the held-out faces by source."""
    ilc: ValidationSet  # ILC 2021 real photos: the headline set
    fmd: NotRequired[ValidationSet]  # Face-Mask-Detection crops (when that source was used)
    mfn: NotRequired[ValidationSet]  # MaskedFace-Net synthetic masks (when used)
    syn: NotRequired[ValidationSet]  # MaskTheFace masks drawn on MTFL faces (when used)
    all_sources: ValidationSet  # every validation face together
    # bucket name ("0-20px", "20-40px", ">=40px") -> ILC faces of that size
    ilc_by_face_size: dict[str, SizeBucket]


VALIDATION_SETS = ("ilc", "fmd", "mfn", "syn", "all_sources")
"""The keys of Validation that hold a ValidationSet, in display order (headline first)."""


class ClassifierReport(TypedDict):
    """The classifier's training and validation report (training.train_classifier, also written
    alone as weights/classifier_validation.json)."""
    classes: list[str]  # class names in label order
    selection: str  # how the released epoch was chosen
    best_epoch: int
    epochs_run: int
    split_seed: int  # seed of the group-aware train/validation split
    val_frac: float  # share of faces held out for validation
    n_train_faces: int
    n_val_faces: int
    train_counts_per_source: dict[str, int]  # source -> training faces
    val_counts_per_source: dict[str, dict[str, int]]  # source -> class -> validation faces
    class_weights: list[float]  # loss weight per class
    source_weights: dict[str, float]  # loss weight per source
    source_repeat: dict[str, float]  # times each source is drawn per epoch
    init: str | None  # weights the run started from, or None (from scratch)
    lr: float
    batch: int
    label_smoothing: float
    ema: float
    architecture: dict[str, Any]  # the classifier's config.json
    augment: dict[str, Any]  # training.augment settings
    train_seconds: float
    validation: Validation
    history: list[dict[str, Any]]  # one row of losses and validation scores per epoch


# ---------------------------------------------------------------- detector (training.evaluate_detector)


class DetectionScores(TypedDict):
    """Face detection against the ground-truth boxes at IoU 0.5 (training.evaluate_detector
    .voc_ap)."""
    ap: float  # VOC all-point average precision
    recall: float
    precision: float
    npos: int  # ground-truth faces counted
    tp: int
    fp: int


class DetectorRun(TypedDict):
    """One weights folder at one min_face setting."""
    headline: DetectionScores  # faces >= 20 px (smaller ones ignored)
    all_faces: DetectionScores
    # face-size bucket ("12-20", "20-32", "32-64", ">=64"; short side, px) -> scores
    by_size: dict[str, DetectionScores]
    by_class: dict[str, DetectionScores]  # class of the ground-truth face -> scores
    by_group: dict[str, DetectionScores]  # "masked" (mask + incorrect) / "unmasked" -> scores
    min_face: float  # the detector's smallest face (px)
    seconds_per_image: float
    detections: int


class DetectorSplit(TypedDict):
    """The held-out images the detector is scored on."""
    source: str
    images: int
    faces: int
    faces_ge_20px: int
    faces_by_class: dict[str, int]


class DetectorView(TypedDict):
    """One more validation set (training.evaluate_detector.view_sets): the ILC validation photos
    small or degraded, or the adityap27 crowds."""
    split: DetectorSplit
    baseline: dict[str, DetectorRun]  # original MTCNN: "min_face_<N>" -> run
    weights: NotRequired[dict[str, DetectorRun]]  # the released weights


class DetectorPrevious(TypedDict):
    """The previous release's detector on the same sets."""
    release: str
    weights: dict[str, DetectorRun]
    views: dict[str, dict[str, DetectorRun]]


class DetectorCamera(TypedDict):
    """The "camera" detector weights (weights/camera/, pipeline.engine.config.DETECTOR_WEIGHTS)
    on the same sets as the released ("photo") detector."""
    weights_dir: str
    weights: dict[str, DetectorRun]  # the standard split: "min_face_<N>" -> run
    views: dict[str, dict[str, DetectorRun]]  # view name -> "min_face_<N>" -> run


class DetectorAutoRun(DetectorRun):
    """The "auto" detector at one min_face setting."""
    camera_images: int  # how many of the set's images took the camera weights


class DetectorAuto(TypedDict):
    """The "auto" detector (pipeline.engine.config.AUTO_DETECTOR): the released ("photo") and
    camera weights, one chosen per image, on the same sets."""
    rule: str  # when an image takes the camera weights
    weights: dict[str, DetectorAutoRun]  # the standard split: "min_face_<N>" -> run
    views: dict[str, dict[str, DetectorAutoRun]]  # view name -> "min_face_<N>" -> run


class DetectorReport(TypedDict):
    """Original MTCNN vs the released detector (training.evaluate_detector, also written alone as
    weights/detector_metrics.json)."""
    split: DetectorSplit
    metric: str  # one line on how AP and recall are computed
    detector_config: dict[str, Any]  # the DetectorConfig used (min_face aside)
    baseline: dict[str, DetectorRun]  # original MTCNN weights: "min_face_<N>" -> run
    weights_dir: NotRequired[str]  # the weights folder evaluated (with `weights`)
    weights: NotRequired[dict[str, DetectorRun]]  # the released weights: "min_face_<N>" -> run
    timing: NotRequired[dict[str, Any]]  # seconds per image by weights and min_face, best of a few runs
    fine_tuning: NotRequired[dict[str, Any]]  # training.train_detector's verdict on the fine-tuned nets
    views: NotRequired[dict[str, DetectorView]]  # the same comparison on more validation sets
    camera: NotRequired[DetectorCamera]  # the camera detector weights on the same sets
    auto: NotRequired[DetectorAuto]  # the two chosen per image, on the same sets
    previous: NotRequired[DetectorPrevious]  # the previous release on the same sets
    seconds: float  # time the evaluation took


# ---------------------------------------------------------------- curves and cross-validation


class RocCurve(TypedDict):
    """One-vs-rest ROC of one class (training.evaluate.roc_curve, thinned)."""
    fpr: list[float]
    tpr: list[float]
    auc: float


class PrCurve(TypedDict):
    """One-vs-rest precision-recall curve of one class (training.evaluate.pr_curve, thinned)."""
    recall: list[float]
    precision: list[float]
    ap: float


class CvFold(TypedDict):
    """One cross-validation fold (training.cross_validate), scored on its ILC faces."""
    fold: int
    n: int
    binary_accuracy: float
    macro_f1: float
    accuracy: float
    recall_mask: float
    recall_no_mask: float
    recall_incorrect: float
    f1_mask: float
    f1_no_mask: float
    f1_incorrect: float
    majority_macro_f1: float
    all_sources_macro_f1: float
    best_epoch: int
    seconds: float


class Spread(TypedDict):
    """A figure over the folds."""
    mean: float
    std: float
    min: float
    max: float


class CvProtocol(TypedDict):
    """How the folds were made and trained."""
    folds: int  # folds planned (cv_folds may hold fewer)
    epochs: int  # epochs each fold's model was trained
    seed: int
    batch: int
    lr: float


class ReportFigures(TypedDict):
    """The figures claimed by the report MaskWatch's design comes from (binary classifier)."""
    accuracy: float
    precision: float
    recall: float
    weights_mb: float
    source: str


# ---------------------------------------------------------------- the document


class AtTargetPrior(TypedDict):
    """Scores re-weighted to the held-out target's class mix (prior: class -> share)."""
    prior: dict[str, float]
    binary_accuracy: float
    macro_f1: float
    incorrect_precision: float
    incorrect_recall: float


class ViewSizeBucket(TypedDict):
    """Scores of the faces of one size range in a view."""
    n_faces: int
    metrics: ClassifierScores


class ViewScores(TypedDict):
    """One view under one decision (training.evaluate_views)."""
    metrics: ClassifierScores
    median_face_px: NotRequired[float]  # median face side of the view's faces
    by_face_size: dict[str, ViewSizeBucket]  # "<20px", "20-32px", "32-64px", ">=64px" -> scores
    at_target_prior: AtTargetPrior


class Reliability(TypedDict):
    """A reliability diagram: per confidence bin, the mean confidence and accuracy."""
    bin_lo: list[float]
    bin_hi: list[float]
    n: list[int]  # faces in each bin
    confidence: list[float | None]  # None for an empty bin
    accuracy: list[float | None]
    ece: float  # expected calibration error
    nll: float  # mean negative log-likelihood


class View(TypedDict):
    """One view of the validation faces: the raw argmax and the released decision rule."""
    argmax: ViewScores
    rule: NotRequired[ViewScores]
    reliability_raw: NotRequired[Reliability]
    reliability_rule: NotRequired[Reliability]


class StreetScores(TypedDict):
    """The street faces under one decision: the confusion matrix and its rates."""
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted, in `classes` order
    mask_as_incorrect: float  # share of the masks called `incorrect`
    no_mask_as_incorrect: float
    mask_as_no_mask: float
    no_mask_as_mask: float


class StreetCheck(TypedDict):
    """The classifier on real street photos' validation faces, labels checked by eye
    (training.evaluate_views.street_report)."""
    checks: str  # the file of checked labels
    n_faces: dict[str, int]  # class -> faces
    argmax: StreetScores
    rule: StreetScores
    rule_by_source: NotRequired[dict[str, StreetScores]]  # source ("adi", "mac") -> the rule's scores


class ViewsReport(TypedDict):
    """The classifier on the standard, small (median face 21 px) and degraded views of the ILC
    validation faces (training.evaluate_views)."""
    weights: str  # the weights folder scored
    n_faces: int
    small_factor: float  # scale that brings the median face side to 21 px
    config_rule: dict[str, Any]  # temperature and logit_bias of the classifier's config.json
    views: dict[str, View]  # "standard", "small", "degraded"
    street: NotRequired[StreetCheck]  # the street check, on other faces than the views


class MetricsDoc(TypedDict):
    """weights/metrics.json."""
    schema_version: int  # SCHEMA_VERSION of the writer
    generated: str  # UTC time written, ISO 8601
    git_commit: str | None  # commit of the code that wrote it, None outside git
    classes: list[str]  # class names in label order
    report: ReportFigures
    model_sizes_bytes: dict[str, int]  # net folder -> bytes of its files (manifest.json)
    total_weight_bytes: int  # bytes of every model.safetensors
    classifier: NotRequired[ClassifierReport]
    detector: NotRequired[DetectorReport]
    cv_folds: NotRequired[list[CvFold]]
    cv_summary: NotRequired[dict[str, Spread]]  # fold figure (a CvFold key) -> spread over the folds
    cv_protocol: NotRequired[CvProtocol]
    datasets: dict[str, str]  # data set -> one line: what, how many, licence
    # the classifier's training settings (a subset of ClassifierReport)
    training_config: NotRequired[dict[str, Any]]
    roc: NotRequired[dict[str, RocCurve]]  # class (or "not_masked") -> ROC on the ILC validation faces
    pr: NotRequired[dict[str, PrCurve]]  # class (or "not_masked") -> PR curve on the same faces
    curves_on: NotRequired[str]  # which faces and classifier the curves were computed on
    classifier_views: NotRequired[ViewsReport]  # the released classifier on the target-like views
    classifier_views_previous: NotRequired[ViewsReport]  # the previous release on the same views


# ---------------------------------------------------------------- checking


class MetricsSchemaError(ValueError):
    """A metrics document that does not fit this schema; the message says what and where."""


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def _check(value: object, tp: object, path: str, out: list[str]) -> None:
    if tp is Any:
        return
    if typing.is_typeddict(tp):
        if not isinstance(value, dict):
            out.append(f"{path}: expected an object, found {_kind(value)}")
            return
        hints = typing.get_type_hints(tp)
        for key in sorted(tp.__required_keys__ - value.keys()):
            out.append(f"{path}.{key}: missing")
        for key, sub in hints.items():
            if key in value:
                _check(value[key], sub, f"{path}.{key}", out)
        return
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        trial: list[str] = []
        for option in args:
            trial.clear()
            _check(value, option, path, trial)
            if not trial:
                return
        out.append(f"{path}: expected {' or '.join(_name(a) for a in args)}, found {_kind(value)}")
        return
    if origin is list:
        if not isinstance(value, list):
            out.append(f"{path}: expected a list, found {_kind(value)}")
            return
        for i, item in enumerate(value):
            _check(item, args[0], f"{path}[{i}]", out)
        return
    if origin is dict:
        if not isinstance(value, dict):
            out.append(f"{path}: expected an object, found {_kind(value)}")
            return
        for key, item in value.items():
            _check(item, args[1], f"{path}.{key}", out)
        return
    ok = {type(None): value is None,
          bool: isinstance(value, bool),
          int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, (int, float)) and not isinstance(value, bool),
          str: isinstance(value, str)}.get(tp)
    if ok is None:
        raise TypeError(f"metrics_schema: no check for {tp!r} at {path}")
    if not ok:
        out.append(f"{path}: expected {_name(tp)}, found {_kind(value)}")


def _name(tp: object) -> str:
    return {type(None): "null", bool: "a boolean", int: "an integer", float: "a number",
            str: "a string"}.get(tp, "an object" if typing.is_typeddict(tp) or typing.get_origin(tp) is dict
                                 else "a list" if typing.get_origin(tp) is list else str(tp))


def version_problem(doc: object) -> str | None:
    """What is wrong with `doc`'s schema_version, or None when it is SCHEMA_VERSION."""
    if not isinstance(doc, dict):
        return f"expected a JSON object, found {_kind(doc)}"
    if "schema_version" not in doc:
        return f"it has no schema_version (written before the schema); this version reads schema_version {SCHEMA_VERSION}"
    if doc["schema_version"] != SCHEMA_VERSION:
        return f"it has schema_version {doc['schema_version']!r}; this version reads schema_version {SCHEMA_VERSION}"
    return None


def problems(doc: object) -> list[str]:
    """Everything in `doc` that does not fit MetricsDoc: the version first, then each missing
    required key or wrong basic type as "metrics.path.to.key: what". [] when it fits."""
    version = version_problem(doc)
    if version is not None:
        return [version]
    out: list[str] = []
    _check(doc, MetricsDoc, "metrics", out)
    return out


def parse(doc: object, source: str = FILENAME) -> MetricsDoc:
    """`doc` (parsed JSON) as a MetricsDoc, or MetricsSchemaError naming `source` and the first
    few problems."""
    found = problems(doc)
    if found:
        more = f" (and {len(found) - 5} more)" if len(found) > 5 else ""
        raise MetricsSchemaError(f"{source} does not fit the metrics schema: " + "; ".join(found[:5]) + more)
    return typing.cast(MetricsDoc, doc)
