"""Write the model card weights/README.md from weights/metrics.json (run training.evaluate
first). Every number in the card comes from that file.

usage: python -m training.model_card [--weights weights]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.engine.weights import sha256_file
from pipeline.records import CLASSES
from training.paths import WEIGHTS


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _cm_table(cm) -> list[str]:
    rows = ["| true \\ predicted | " + " | ".join(CLASSES) + " |", "|---|" + "---:|" * len(CLASSES)]
    rows += [f"| {c} | " + " | ".join(str(v) for v in cm[k]) + " |" for k, c in enumerate(CLASSES)]
    return rows


def _det_row(name: str, r: dict) -> str:
    sizes = r.get("by_size", {})
    cells = [f"{r['headline']['ap']:.3f}", f"{r['headline']['recall']:.3f}"]
    cells += [f"{sizes[b]['recall']:.3f}" if b in sizes else "–" for b in ("12-20", "20-32", "32-64", ">=64")]
    groups = r.get("by_group", {})
    cells += [f"{groups[g]['ap']:.3f}" if g in groups else "–" for g in ("masked", "unmasked")]
    return f"| {name} | " + " | ".join(cells) + " |"


DET_VIEW_NAMES = {"ilc_small": "ILC validation photos shrunk to a 21 px median face",
                  "ilc_degraded": "the same with camera degradations",
                  "crowds": "adityap27 validation crowds"}


def _det_views_text(det: dict) -> list[str]:
    """The detector on the validation sets that look like the target, next to the previous release."""
    views = det.get("views") or {}
    if not views:
        return []
    prev = (det.get("previous") or {}).get("views") or {}
    camera = (det.get("camera") or {}).get("views") or {}
    auto = (det.get("auto") or {}).get("views") or {}
    L = ["On photos that look like the target (`training.evaluate_detector.view_sets`): face AP at IoU 0.5 "
         "over faces ≥ 20 px and over all faces, and recall of 12–20 px faces.", "",
         "| set | min_face | original AP ≥20 / all / R 12–20 | previous release | MaskWatch |"
         + (" MaskWatch camera weights |" if camera else "") + (" MaskWatch auto |" if auto else ""),
         "|---|---:|---|---|---|" + ("---|" if camera else "") + ("---|" if auto else "")]
    cell = lambda r: (f"{r['headline']['ap']:.3f} / {r['all_faces']['ap']:.3f} / "
                      f"{r['by_size']['12-20']['recall']:.3f}") if r else "–"
    for name, v in views.items():
        for key, base in v["baseline"].items():
            L.append(f"| {DET_VIEW_NAMES.get(name, name)} | {base['min_face']:g} | {cell(base)} | "
                     f"{cell((prev.get(name) or {}).get(key))} | {cell((v.get('weights') or {}).get(key))} |"
                     + (f" {cell((camera.get(name) or {}).get(key))} |" if camera else "")
                     + (f" {cell((auto.get(name) or {}).get(key))} |" if auto else ""))
    L += ["", MIN_FACE_NOTE]
    if camera:
        L += ["", CAMERA_WEIGHTS_NOTE]
    if auto:
        L += ["", auto_note(det)]
    return L + [""]


MIN_FACE_NOTE = (
    "min_face 12 is the default since 2026-12-03: the pyramid from 20 px faces, plus the small-face "
    "pass over the 12 px level, whose faces under 20 px are added where the main pass found none and "
    "ranked after its faces (`DetectorConfig.small_face_below`). So min_face 20 rows are the main pass "
    "alone (the previous default), and min_face 15 equals them (no level of a 15 px pyramid is a full "
    "step finer than the main one). The previous release's rows are scored by the same cascade, pass "
    "included. The pass costs 1.3-1.8x the detector time (docs/PERFORMANCE.md).")


CAMERA_WEIGHTS_NOTE = (
    "The camera detector weights (`camera/`: P-Net as released, R-Net and O-Net fine-tuned by the same "
    "recipe with camera copies of a third of the training scenes, `training.rebuild.CAMERA_SHARE`) are "
    "what `python -m pipeline watch` and the webcam use; `detect --detector camera`, `batch --detector "
    "camera` and the Photo and Video pages' \"Face detector\" select pick them. They gain on degraded "
    "frames and lose on sharp crowd photos and on faces under 20 px, so the \"auto\" detector, the default "
    "for photos and video files, gives them only the images with strong compression block edges or "
    "sensor noise.")


AUTO_SET_NAMES = {"ilc_small": "the small view", "ilc_degraded": "the degraded view", "crowds": "the crowds"}


def auto_note(det: dict) -> str:
    """What the "auto" detector did on each set of the detector report `det`: the rule, and how
    many images took the camera weights (at each set's smallest min_face)."""
    auto = det["auto"]
    names = {"standard": "the ILC split", **AUTO_SET_NAMES}
    images = {"standard": det["split"]["images"]} | {n: v["split"]["images"] for n, v in det.get("views", {}).items()}
    taken = []
    for name, runs in {"standard": auto["weights"], **auto["views"]}.items():
        run = min(runs.values(), key=lambda r: r["min_face"])
        of = f" of {images[name]}" if name in images else ""
        taken.append(f"{run['camera_images']}{of} images of {names.get(name, name)}")
    return ("The \"auto\" detector (`detect --detector auto`, \"Auto (per photo or clip)\" on the Photo and Video pages) "
            f"runs the camera weights on an image when {auto['rule']}: here on " + ", ".join(taken) + ". "
            + AUTO_NOTE)


AUTO_NOTE = (
    "It is the default of `detect` and of the Home and Photo pages since 2026-12-03, and of the Video "
    "page and `batch` since 2026-12-04, where a video runs the one set that most of its first 24 "
    "frames take: its "
    "face AP ≥ 20 px is below the photo weights' on no set measured (over all sizes it can be a little "
    "below, the small faces a camera-chosen image loses). Blockiness finds JPEG and strong video compression, "
    "the noise arm grainy frames before compression smooths the grain away. Measured on 2026-12-03 "
    "(face AP ≥ 20 px, min_face 12) on the degraded view made again with its last step changed, "
    "photo / camera / auto: without compression (JPEG 100) 0.693 / 0.753 / 0.720 (the camera weights "
    "for 147 of 295 images, by noise); through H.264 (libx264 via PyAV, one intra frame) at CRF 26 / "
    "32 / 38: 0.667 / 0.709 / 0.669, 0.570 / 0.640 / 0.622 and 0.409 / 0.496 / 0.496. Mildly "
    "compressed blurred frames stay with the photo weights, where the camera weights would gain; no "
    "global measure tried (noise, sharpness, gradient) told them from sharp photos. On compressed "
    "copies of a faceless photo the camera weights find false faces that the photo weights do not "
    "(JPEG 30: 3 against 0).")


REPRODUCE_CHECK = (
    "Checked on 2026-12-02: `python -m training.rebuild --out runs/rebuild_out` ran end to end in a "
    "fresh clone in 116 minutes on the shared 2-core CPU (detector 48, with its held-out check; "
    "classifier 68; calibration 0.3); into `weights/` the reports add about 15. It does not reproduce "
    "the released R-Net, O-Net and classifier bit for bit: the release's R-Net and O-Net were trained "
    "from a mining pass cached in an earlier session, and its stage-1 classifier before one ILC photo "
    "left the data. The fresh run gave face AP >= 20 px of 0.752 / 0.802 / 0.684 / 0.696 on the ILC "
    "split, its small and degraded views and the crowds (released: 0.758 / 0.812 / 0.693 / 0.729) and a "
    "classifier with binary accuracy 93.1 / 93.4 / 88.6% on the standard, small and degraded views "
    "(the release then: 94.2 / 94.6 / 89.0%). The classifier released since (stage 2 with the street "
    "checks, 2026-12-03) was trained from the earlier release's stage 1 exactly as the rebuild's stage 2 "
    "runs; run so again it gives the released weights byte for byte. A second fresh `python -m training.train_detector --all` gave "
    "R-Net and O-Net byte-identical to the first, so a fresh rebuild is deterministic; the gap to the "
    "release is how far the result moves with an imperceptible change in the mining pass (and, for "
    "the classifier, one photo fewer), not noise between runs. From the same mining pass, "
    "`python -m training.train_detector --all --no-replace` gave R-Net and O-Net byte-identical to the "
    "released ones (26 minutes); P-Net is the original, as converted. Mining now runs at a fixed "
    "thread count (`train_detector.MINE_THREADS`), and two classifier runs with the same arguments "
    "give identical weights. The camera R-Net and O-Net came from that cached mining pass too. Mined "
    "afresh, seed 1234 gives nets that find a face on the dogs photo, so the rebuild tries the next seed "
    "(`training.rebuild.CAMERA_TRIES`): seed 1235 passes, with face AP >= 20 px of 0.748 / 0.817 / 0.756 / "
    "0.713 on the four sets (released camera weights: 0.748 / 0.807 / 0.770 / 0.665). The released ones "
    "stay for their better figure on the degraded view, the camera frames they are for.")
"""What the last rebuild check found (update it when the recipe or the released weights change)."""

CLASSIFIER_RECIPE = ("a 40-epoch run keeping the epoch with the best ILC validation macro-F1, then a "
                     "5-epoch fine-tune with small-face and camera augmentation and the adityap27 and "
                     "macwin photos (with the labels, checked by eye, of the street masks the previous "
                     "classifier took for `incorrect`), keeping the epoch with the best mean macro-F1 over the standard, "
                     "small and degraded views; then the temperature and `incorrect` rule are fitted")
"""How the released classifier is trained, in a phrase (update it with the recipe)."""

LABEL_AUDIT_SHA256 = "8e349d5f"
"""Start of the sha256 of the classifier's model.safetensors that LABEL_AUDIT describes."""
LABEL_AUDIT = (
    "**Label noise.** `python -m training.error_sheet --binary` draws every mask-vs-not mistake on "
    f"these faces. Looked at by eye for the released classifier (`model.safetensors` sha256 {LABEL_AUDIT_SHA256}…, "
    "43 mistakes of 728): 10 faces carry a wrong label or box (4 bare, smiling faces labelled `mask`; "
    "3 plainly masked faces labelled `no_mask`; 3 boxes on a mask worn on the chest, labelled "
    "`incorrect`); 18 could be read either way (blurred or tiny, side views, a mask at the edge of "
    "the nose, a clear plastic mask); 15 are the classifier's own mistakes (masks below the nose "
    "taken for worn ones; plainly worn masks taken for `incorrect` or `no_mask`). With those 10 "
    "labels corrected it would score 95.5%; against these labels even a classifier right on every "
    "face would score at most 98.6% (the audit of the previous release, 50 mistakes, found 11 "
    "wrong labels). The labels were not changed.")
"""What looking at the classifier's validation mistakes found; the card shows it only for the
classifier it describes (update both with the weights)."""


TRAINING_LABELS = (
    "**Training labels.** `python -m training.label_issues` ran cleanlab on out-of-fold probabilities "
    "of the 3,224 ILC training faces (3 folds, 3 epochs each) and flagged 318. Of the 160 highest-ranked, "
    "looked at by eye, 11 were plainly mislabelled (5 bare faces labelled `mask`, 6 masked faces labelled "
    "`no_mask`) and 5 unclear; most of the rest were the short-trained models' own mistakes. They are "
    "listed in `training/label_fixes.json`. The fine-tune with them applied gave no gain on the validation "
    "views (binary 94.0 / 94.2 / 88.2%, macro-F1 0.875 / 0.876 / 0.798 on standard / small / degraded, "
    "against 94.2 / 94.6 / 89.0% and 0.877 / 0.879 / 0.804 without), so this release does not use them.")
"""What the label-noise search found for the current recipe (update it with the weights)."""


def _cv_text(m: dict) -> str:
    s, p, folds = m.get("cv_summary") or {}, m.get("cv_protocol") or {}, m.get("cv_folds") or []

    def ms(k, pct=True):
        v = s.get(k)
        if not v:
            return "?"
        return (f"{100 * v['mean']:.1f}% ± {100 * v['std']:.1f}" if pct else f"{v['mean']:.3f} ± {v['std']:.3f}")
    return (f"Cross-validation of the recipe ({len(folds)} of {p.get('folds', '?')} folds, stratified and "
            f"grouped by near-duplicates, each model trained from scratch for {p.get('epochs', '?')} epochs; "
            f"ILC faces of each validation fold; mean ± std over folds): binary accuracy {ms('binary_accuracy')}, "
            f"macro-F1 {ms('macro_f1', False)}, recall mask {ms('recall_mask')}, no_mask {ms('recall_no_mask')}, "
            f"incorrect {ms('recall_incorrect')}; majority class macro-F1 {ms('majority_macro_f1', False)}. "
            f"Per fold: `metrics.json` `cv_folds`.")


VIEW_NAMES = {"standard": "standard (as shot)", "small": "small (median face 21 px)",
              "degraded": "small + camera degradations"}


def _views_text(m: dict) -> list[str]:
    """The small-face / degraded views and the `incorrect` rule, next to the previous release."""
    cur, prev = m.get("classifier_views"), m.get("classifier_views_previous")
    if not cur:
        return []
    rule = cur.get("config_rule") or {}
    L = ["### Small faces, camera frames and the `incorrect` rule", "",
         "The tables above are the classifier's plain argmax; the app applies the rule below.", "",
         "The held-out street photos have a median face side of 21 px (ILC's: 52) and 79% mask, 18% "
         "no_mask, 3% incorrect faces (ILC's validation: 50 / 38 / 12%). So the same validation faces "
         f"are also scored shrunk (one factor, {cur.get('small_factor', 0):.3f}, so that their median side "
         "is 21 px), and shrunk plus camera degradations (Gaussian or motion blur, low light, colour cast, "
         "sensor noise, JPEG 20–60; `training.views`). '@3%': the confusion matrix reweighted to the "
         "target's class mix. 'rule': the released decision rule, logits / "
         f"{rule.get('temperature', 1):.3f} + bias {rule.get('logit_bias')} (mask, no_mask, incorrect), "
         "fitted on these validation views for macro-F1 plus binary accuracy at the target's mix (`training.calibrate`).", "",
         "| weights | view | decision | binary acc. | macro-F1 | incorrect P / R | incorrect P / R @3% |",
         "|---|---|---|---:|---:|---:|---:|"]
    for name, doc, rules in (("previous release", prev, ("argmax", "rule")), ("this release", cur, ("argmax", "rule"))):
        for v, d in ((doc or {}).get("views") or {}).items():
            for r in rules:
                if r not in d:
                    continue
                mm, pp = d[r]["metrics"], d[r]["at_target_prior"]
                pc = mm["per_class"]["incorrect"]
                L.append(f"| {name} | {VIEW_NAMES.get(v, v)} | {r} | {_pct(mm['binary_accuracy'])} | "
                         f"{mm['macro_f1']:.3f} | {_pct(pc['precision'])} / {_pct(pc['recall'])} | "
                         f"{_pct(pp['incorrect_precision'])} / {_pct(pp['incorrect_recall'])} |")
    L += ["", "This release with its rule, by face size (short side in the view's pixels; binary accuracy / macro-F1, faces):", "",
          "| view | < 20 px | 20–32 px | 32–64 px | ≥ 64 px |", "|---|---:|---:|---:|---:|"]
    for v, d in (cur.get("views") or {}).items():
        cells = []
        for b in d["rule"]["by_face_size"].values():
            bm = b.get("metrics")
            cells.append(f"{_pct(bm['binary_accuracy'])} / {bm['macro_f1']:.3f} ({b['n_faces']})" if bm else "–")
        L.append(f"| {VIEW_NAMES.get(v, v)} | " + " | ".join(cells) + " |")
    cf = cur.get("cross_fit") or {}
    if cf:
        n = next(iter(cf.values()))["splits"]
        L += ["", "The rule is fitted on the faces it is scored on, so its rows above are optimistic. Fitted "
              "instead on one half of the photos and scored on the other (and the reverse), @3%"
              + f", mean over {n} random halvings (range in brackets): " + "; ".join(
                  f"{VIEW_NAMES.get(v, v)}: binary {_cross(d, 'binary_accuracy')}, macro-F1 "
                  f"{_cross(d, 'macro_f1', pct=False)}, incorrect P / R {_cross(d, 'incorrect_precision')} / "
                  f"{_cross(d, 'incorrect_recall')}" for v, d in cf.items()) + "."]
    L += _street_text(cur, prev)
    rel = ((cur.get("views") or {}).get("small") or {})
    if rel.get("reliability_raw"):
        L += ["", f"Calibration on the small view: expected calibration error {rel['reliability_raw']['ece']:.3f} "
              f"as trained, {rel['reliability_rule']['ece']:.3f} with the rule (reliability diagram on the "
              "Metrics page)."]
    return L + [""]


def _street_text(cur: dict, prev: dict | None) -> list[str]:
    """The street check (training.evaluate_views.street_report), next to the previous release."""
    st = cur.get("street")
    if not st:
        return []
    n = st["n_faces"]
    ilc = ""
    cm = ((((cur.get("views") or {}).get("standard") or {}).get("rule") or {}).get("metrics") or {}).get("confusion_matrix")
    if cm and sum(cm[0]):
        ilc = (f" With the rule, {_pct(cm[0][2] / sum(cm[0]))} of ILC's validation masks (standard view) are called "
               f"`incorrect`, and {_pct(st['rule']['mask_as_incorrect'])} of these street masks.")
    L = ["", f"Street check (`training.evaluate_views.street_report`): the validation faces of the adityap27 and macwin "
         f"news, street and stock photos, each with_mask face's label checked by eye (`{st['checks']}`): {n['mask']} "
         f"masks, {n['incorrect']} incorrect, {n['no_mask']} bare faces.{ilc} At the target's mix (79% masks, 3% "
         "incorrect) every point of masks called `incorrect` weighs about a quarter of all the incorrect faces, so this "
         "rate sets `incorrect` precision.", "",
         "| weights | decision | mask → incorrect | no_mask → incorrect | mask → no_mask | no_mask → mask |",
         "|---|---|---:|---:|---:|---:|"]
    prev_st = (prev or {}).get("street") or {}
    for name, doc in (("previous release", prev_st), ("this release", st)):
        for r in ("argmax", "rule"):
            if r in doc:
                d = doc[r]
                L.append(f"| {name} | {r} | {_pct(d['mask_as_incorrect'])} | {_pct(d['no_mask_as_incorrect'])} | "
                         f"{_pct(d['mask_as_no_mask'])} | {_pct(d['no_mask_as_mask'])} |")
    by, prev_by = st.get("rule_by_source") or {}, prev_st.get("rule_by_source") or {}
    if by:
        names = {"adi": "adityap27 (news and street photos)", "mac": "macwin (web and stock photos)"}
        L += ["", "Masks called `incorrect` with the rule, by source: " + "; ".join(
            f"{names.get(k, k)} {_pct(d['mask_as_incorrect'])} of {sum(d['confusion_matrix'][0])}"
            + (f" (previous release {_pct(prev_by[k]['mask_as_incorrect'])})" if k in prev_by else "")
            for k, d in by.items()) + "."]
    return L


def _cross(d: dict, key: str, pct: bool = True) -> str:
    """A cross-fitted figure (evaluate_views.cross_fit_report): its mean and its range."""
    f = _pct if pct else (lambda v: f"{v:.3f}")
    return f"{f(d['at_target_prior'][key])} ({f(d['min'][key])}–{f(d['max'][key])})"


def render(m: dict, label_audit: bool = False) -> str:
    """metrics.json -> the model card. label_audit: include LABEL_AUDIT (the classifier is the
    audited one)."""
    L = ["---", "license: other", "library_name: pytorch", "tags: [face-detection, mask-detection, mtcnn, safetensors]",
         "---", "", "# MaskWatch weights", "",
         "Two stages: an MTCNN face detector (P-Net, R-Net, O-Net) and a small mask classifier "
         "(`mask`, `no_mask`, `incorrect`). Each net is a folder with `config.json` + `model.safetensors` "
         "(the PyTorchModelHubMixin layout); `manifest.json` holds the sha256 of every file, and the app "
         "refuses any file that does not match it.", ""]
    sizes = m.get("model_sizes_bytes", {})
    L += ["## Files and sizes", "", "| net | bytes |", "|---|---:|"]
    L += [f"| {k} | {v:,} |" for k, v in sorted(sizes.items())]
    L += [f"| **all weights** | **{m.get('total_weight_bytes', 0):,}** ({m.get('total_weight_bytes', 0) / 1e6:.2f} MB; the report's: 8.8 MB) |", ""]
    if "camera" in sizes:
        photo = sum(v for k, v in sizes.items() if k != "camera")
        camera = sizes["camera"] + sizes.get("classifier", 0)
        L += [f"`camera/` is a second set of detector weights, not a fourth net: one engine loads the classifier and one set, "
              f"{photo:,} bytes with the photo detector, {camera:,} with the camera one.", ""]
    cls = m.get("classifier") or {}
    v = (cls.get("validation") or {}).get("ilc") or {}
    met, base = v.get("metrics"), v.get("majority_baseline")
    if met:
        L += ["## Classifier", "",
              f"Validated on held-out ILC 2021 faces (real photos; {met['n']} faces; stratified, group-aware "
              f"split: whole images and their near-duplicates stay on one side; seed {cls.get('split_seed')}). "
              "The crop is the face box made square, grown by 15% on each side, resampled to 64×64.", "",
              "| | MaskWatch | majority class | report |", "|---|---:|---:|---:|",
              f"| binary accuracy (mask vs not) | {_pct(met['binary_accuracy'])} | {_pct(base and base['binary_accuracy'])} | 93.15% |",
              f"| 3-class accuracy | {_pct(met['accuracy'])} | {_pct(base and base['accuracy'])} | – |",
              f"| 3-class macro-F1 | {met['macro_f1']:.3f} | {base['macro_f1'] if base else 0:.3f} | – |"]
        for c in CLASSES:
            pc = met["per_class"][c]
            L.append(f"| {c}: precision / recall | {_pct(pc['precision'])} / {_pct(pc['recall'])} | | "
                     + ("91.93% / 94.6%" if c == "mask" else "–") + " |")
        L += ["", "Confusion matrix (rows: true class):", ""] + _cm_table(met["confusion_matrix"]) + [""]
        by_size = (cls.get("validation") or {}).get("ilc_by_face_size") or {}
        if by_size:
            L += ["By face size (short side):", "", "| size | faces | accuracy | macro-F1 | binary accuracy |", "|---|---:|---:|---:|---:|"]
            for k, b in by_size.items():
                bm = b.get("metrics", b)
                if bm.get("n"):
                    L.append(f"| {k} | {bm['n']} | {_pct(bm['accuracy'])} | {bm['macro_f1']:.3f} | {_pct(bm['binary_accuracy'])} |")
            L.append("")
        if label_audit:
            L += [LABEL_AUDIT, ""]
        else:
            L += [TRAINING_LABELS, ""]
        L += _views_text(m)
        if m.get("roc"):
            L += ["ROC AUC / PR AP (one-vs-rest, same faces): " + ", ".join(
                f"{k} {m['roc'][k]['auc']:.3f} / {m['pr'][k]['ap']:.3f}" for k in m["roc"]) + ".", ""]
        L += ["The report's 93.15% / 91.93% / 94.6% were measured on a test set whose masked and unmasked "
              "faces came from different sources; ours are on real crowd photos, which is harder. "
              + (_cv_text(m) if m.get("cv_folds") else
                 "No k-fold cross-validation was run for these weights (one fixed split)."), ""]
    det = m.get("detector") or {}
    if det:
        L += ["## Detector", "",
              "Face AP and recall at IoU 0.5 on the held-out ILC images (the classifier's validation images), "
              "headline over faces ≥ 20 px (smaller ones ignored); recall by face size (short side, px); AP for "
              "masked (mask + incorrect) and unmasked faces.", "",
              "| weights | AP ≥20 | recall ≥20 | recall 12–20 | 20–32 | 32–64 | ≥64 | AP masked | AP unmasked |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for which, name in (("baseline", "original MTCNN"), ("previous", "previous release"), ("weights", "MaskWatch"),
                            ("camera", "MaskWatch camera weights"), ("auto", "MaskWatch auto")):
            runs = (det.get(which) or {}).get("weights") if which in ("previous", "camera", "auto") else det.get(which)
            for key, r in (runs or {}).items():
                if isinstance(r, dict) and "headline" in r:
                    L.append(_det_row(f"{name}, min_face {r.get('min_face', key)}", r))
        L.append("")
        L += _det_views_text(det)
    L += ["## Data and licences", ""]
    L += [f"- `{k}`: {v}" for k, v in (m.get("datasets") or {}).items()]
    L += ["", "The classifier was trained partly on MaskedFace-Net (CC BY-NC-SA 4.0, Cabani et al.): use "
          "these weights for non-commercial purposes. The detector starts from the original MTCNN weights "
          "(Zhang et al. 2016) as packaged by facenet-pytorch (MIT).", "",
          "## Reproduce", "",
          "One command rebuilds every weight file from `../shared/data` (seeded, one torch thread per job):", "",
          "```",
          "python -m training.rebuild                     # -> weights/, then manifest, metrics.json, this card",
          "python -m training.rebuild --out runs/check    # or into a folder, comparing hashes with weights/",
          "```", "",
          "It converts the original MTCNN weights (P-Net is released as converted), fine-tunes R-Net and "
          "O-Net (`training.train_detector`, about 30 minutes here, mining included, and 15 more for its held-out check) and keeps them only if they beat the "
          "original on the held-out split, fine-tunes them again with camera copies of the scenes for the camera "
          "detector weights (`camera/`, from the same mining pass, in a second process beside the "
          "classifier; released if they find dlib's faces "
          "and no face on the dogs photo, the next seed tried while one fails, about 10 minutes a seed), then trains the classifier (`training.rebuild.CLASSIFIER_STAGES`: "
          + CLASSIFIER_RECIPE + "). " + REPRODUCE_CHECK, "",
          f"Generated from `metrics.json` at commit `{(m.get('git_commit') or '?')[:12]}`."]
    return "\n".join(L) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=WEIGHTS)
    a = ap.parse_args(argv)
    m = json.loads((a.weights / "metrics.json").read_text())
    audited = sha256_file(a.weights / "classifier" / "model.safetensors").startswith(LABEL_AUDIT_SHA256)
    (a.weights / "README.md").write_text(render(m, label_audit=audited))
    print(f"wrote {a.weights / 'README.md'}")


if __name__ == "__main__":
    main()
