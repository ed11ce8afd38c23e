"""Home: the landing page (what MaskWatch does, an annotated sample, device and weights).
The app starts with `streamlit run app.py`, which lists the pages."""
import streamlit as st

from pipeline.engine.config import DEFAULT_MEDIA_DETECTOR
from pipeline.ui import session as ui

ui.page_setup(ui.APP_NAME)
st.title("😷 MaskWatch")
st.markdown(
    "MaskWatch finds every face in a photo, a video or a live webcam stream and tells whether "
    "each person wears a mask, wears none, or wears it incorrectly (nose or mouth uncovered). "
    "It runs two stages: an MTCNN face detector, then a small CNN that labels each face.")

engine = ui.require_engine(DEFAULT_MEDIA_DETECTOR)     # the engine the sample and the Photo and Video pages use
facts = ui.engine_facts(engine)
sample = ui.landing_sample()

left, right = st.columns([3, 2], gap="large")
with left:
    if sample is None:
        st.info("No bundled sample photo was found in pipeline/samples/.")
    else:
        title, analysis, annotated = sample
        st.image(annotated, caption=f"Sample: {title} — {len(analysis.detections)} faces, "
                 f"annotated on this server in {analysis.seconds * 1000:.0f} ms", width="stretch")
with right:
    if sample is not None:
        st.subheader("In the sample")
        ui.count_metrics(sample[1].counts)
        st.html(ui.legend_html())
    st.subheader("Running on")
    st.markdown(f"**Device:** {facts['device']}")
    kind = "Hugging Face Hub" if facts["weights_kind"] == "hub" else "bundled in the repository"
    st.markdown(f"**Weights:** {kind} — `{facts['weights']}`")
    st.subheader("Try it")
    st.page_link("pages/1_Photo.py", label="Photo: upload, snapshot or sample", icon="🖼️")
    st.page_link("pages/2_Video.py", label="Video: annotate a clip", icon="🎞️")
    st.page_link("pages/3_Webcam.py", label="Webcam: live detection", icon="📹")
    st.page_link("pages/4_Metrics.py", label="Metrics: how good the models are", icon="📊")
    st.page_link("pages/5_Dashboard.py", label="Dashboard: people counted", icon="📈")
