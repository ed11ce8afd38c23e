"""Metrics: how good the models are, from weights/metrics.json (never invented)."""
import streamlit as st

from pipeline.ui import metrics as mv
from pipeline.ui import session as ui

ui.page_setup("Metrics")
st.title("📊 Metrics")
data = mv.load()
if data["problem"]:
    st.error(data["problem"])
sizes = mv.model_sizes(data["manifest"])
clf = data["classifier"]

st.subheader("MaskWatch next to the original report")
st.dataframe(mv.comparison_rows(clf, sizes), hide_index=True, width="stretch")
st.caption("The report's figures are for a binary mask / no-mask classifier. MaskWatch has three "
           "classes; its binary figures treat 'mask' as positive and no_mask + incorrect as "
           "negative, on the held-out validation faces.")
found = ", ".join(f"`{k}`" for k, v in data["files"].items() if v) or "none"
st.caption(f"Evaluation files found in `{data['folder']}`: {found}.")

st.header("Mask classifier")
if clf is None:
    st.info("No classifier evaluation yet: no usable `weights/metrics.json` with a `classifier` "
            "section, so there is no confusion matrix or per-class score to show.")
else:
    h = clf["headline"]
    st.caption(f"From `{clf['source']}`; headline set: **{clf['headline_name']}** validation faces "
               f"(n = {h['n']}).")
    c = st.columns(4)
    c[0].metric("accuracy", f"{h['accuracy']:.2%}")
    c[1].metric("macro-F1", f"{h['macro_f1']:.3f}")
    c[2].metric("binary accuracy", f"{h['binary_accuracy']:.2%}")
    c[3].metric("majority baseline", f"{clf['baseline']['accuracy']:.2%}",
                help=f"Always predicting '{clf['baseline'].get('predicts', '?')}'.")
    left, right = st.columns(2)
    left.plotly_chart(mv.confusion_figure(h["confusion_matrix"]), key="cm_counts")
    right.plotly_chart(mv.confusion_figure(h["confusion_matrix"], normalize=True), key="cm_norm")
    st.subheader("Per class")
    left, right = st.columns([3, 2])
    left.plotly_chart(mv.per_class_figure(h), key="per_class")
    right.dataframe(mv.per_class_rows(h), hide_index=True, width="stretch")
    st.subheader("Per validation set")
    st.dataframe(mv.by_source_rows(clf), hide_index=True, width="stretch")
    size_rows = mv.by_size_rows(clf)
    if size_rows:
        st.subheader("Classifier by face size")
        st.dataframe(size_rows, hide_index=True, width="stretch")

st.subheader("Small and degraded faces, and the `incorrect` rule")
if data["views"]:
    st.dataframe(mv.views_rows(data["views"]) + mv.views_rows(data["views_previous"], "previous release"),
                 hide_index=True, width="stretch")
    st.caption("The same validation faces shrunk so that their median side is 21 px (as in the "
               "held-out street photos), and a copy with camera blur, noise, low light and JPEG. "
               "'@3%': reweighted to the real-world mix of 79% mask, 18% no_mask, 3% incorrect.")
    street = mv.street_rows(data["views"]) + mv.street_rows(data["views_previous"], "previous release")
    if street:
        st.dataframe(street, hide_index=True, width="stretch")
        n = data["views"]["street"]["n_faces"]
        st.caption(f"Street check: validation faces of real news and street photos (adityap27, macwin), "
                   f"labels checked by eye ({n['mask']} masks, {n['incorrect']} incorrect, {n['no_mask']} bare). "
                   "At 79% masks, each point of masks called `incorrect` is about a quarter of all "
                   "the incorrect faces, so this rate sets `incorrect` precision.")
    fig = mv.reliability_figure(data["views"])
    if fig is not None:
        st.plotly_chart(fig, key="reliability")
else:
    st.info("No small-face or degraded-view evaluation in `weights/metrics.json` yet.")

st.subheader("ROC and precision-recall curves")
roc = mv.curve_figure(data["roc"], "roc") if data["roc"] else None
pr = mv.curve_figure(data["pr"], "pr") if data["pr"] else None
if roc is None and pr is None:
    st.info("No ROC or PR curve data in the evaluation files yet (they need per-face scores, "
            "written by the release evaluation into `weights/metrics.json`).")
else:
    left, right = st.columns(2)
    if roc is not None:
        left.plotly_chart(roc, key="roc")
    if pr is not None:
        right.plotly_chart(pr, key="pr")

st.subheader("Cross-validation folds")
if data["folds"]:
    st.caption(mv.cv_caption(data["cv_protocol"], data["folds"]))
    st.dataframe(mv.cv_rows(data["cv_summary"]), hide_index=True, width="stretch")
    st.dataframe(data["folds"], hide_index=True, width="stretch")
else:
    st.info("No cross-validation folds in the evaluation files: the classifier was validated on "
            "one held-out split.")

st.header("Face detector")
if data["detector"] is None:
    st.info("No detector evaluation yet (no usable `weights/metrics.json` with a `detector` section), "
            "so recall by face size cannot be shown.")
else:
    d = data["detector"]
    st.caption(f"From `{d['source']}`. {d['metric'].rstrip('.')}. "
               f"Held-out set: {d['split']['images']} images, {d['split']['faces']} faces.")
    fig = mv.detector_size_figure(d)
    if fig is not None:
        st.plotly_chart(fig, key="det_size")
    st.dataframe(mv.detector_size_rows(d), hide_index=True, width="stretch")
    st.caption("min_face 12 is the default: the pyramid from 20 px faces plus the small-face pass, "
               "which adds faces under 20 px where the main pass found none, ranked after its faces. "
               "min_face 20 is the main pass alone (faster); 15 equals it. The previous release "
               "is scored the same way.")
    if d.get("views"):
        st.subheader("On photos that look like the target")
        st.caption("The same comparison on the ILC validation photos shrunk to a 21 px median face, "
                   "those with camera degradations (blur, noise, low light, JPEG 20-60), and the "
                   "adityap27 validation crowds; next to the previous release where recorded, and "
                   "the camera detector weights that `watch` and the Webcam page use, and \"auto\", "
                   "the default for photos and video files, which gives the camera weights only the "
                   "images with strong compression block edges or sensor noise (the Photo and Video "
                   "pages' \"Face detector\" select offers all three).")
        st.dataframe(mv.detector_views_rows(d), hide_index=True, width="stretch")

st.header("Model sizes")
if sizes is None:
    st.info("`weights/manifest.json` is missing, so file sizes are unknown.")
else:
    st.dataframe(sizes["rows"], hide_index=True, width="content")
    st.metric("all weights", f"{sizes['total_mb']:.2f} MB", delta=f"{sizes['total_mb'] - mv.REPORT['model_mb']:+.2f} MB vs report",
              delta_color="inverse")
    if sizes["engine_mb"] != sizes["total_mb"]:
        st.caption(f"One engine loads {sizes['engine_mb']:.2f} MB: the classifier and one set of detector "
                   "weights (photo, or camera for `watch` and the webcam); \"auto\" loads the camera R-Net and "
                   "O-Net as well.")

st.header("Data sets")
rows = mv.datasets_rows(data)
if rows:
    st.dataframe(rows, hide_index=True, width="stretch")
else:
    st.info("The evaluation files do not name their data sets yet.")
st.caption("Bundled sample photos: see `pipeline/samples/SOURCES.md` (FMD, MIT; MaskedFace-Net, "
           "CC BY-NC-SA 4.0, Cabani et al.; dlib examples, Boost).")
