"""Photo: upload, camera snapshot or bundled sample -> annotated image, table, chart, download."""
import streamlit as st

from pipeline.ui import charts
from pipeline.streams import photo
from pipeline.ui import session as ui
from pipeline.engine.config import DEFAULT_MEDIA_DETECTOR, DetectorConfig
from pipeline.media.images import MAX_FILE_BYTES, ImageError, mib

ui.page_setup("Photo")
st.title("🖼️ Photo")

with st.sidebar:
    st.header("Settings")
    detector = ui.detector_select("photo_detector", DEFAULT_MEDIA_DETECTOR)
    min_face = st.slider("Minimum face size (px)", 10, 200, int(DetectorConfig.min_face), step=2, key="photo_min_face",
                         help="Smallest face side to look for. Smaller finds smaller faces and is slower: below 20, "
                              "a second pass looks for faces under 20 px (about 1.5-1.8x the time).")
    onet = st.slider("Detection threshold", 0.50, 0.99, float(DetectorConfig.thresholds[2]), step=0.01,
                     key="photo_onet", help="Face probability a candidate needs at the last detector stage (O-Net).")
    landmarks = st.toggle("Show landmarks", value=False, key="photo_landmarks")
    blur = st.toggle("Blur faces (privacy)", value=False, key="photo_blur",
                     help="Pixelates every face in the shown and the downloaded image.")
    fmt = st.radio("Download format", ["PNG", "JPEG"], horizontal=True, key="photo_format")
engine = ui.require_engine(detector)
ui.sidebar_facts(engine)

source = st.radio("Photo from", ["Upload", "Camera", "Sample"], horizontal=True, key="photo_source")
data, name = None, None
if source == "Upload":
    # refused in the browser past the label's limit; pipeline.media.images checks it again
    up = st.file_uploader(f"A photo (jpg, png or webp, up to {mib(MAX_FILE_BYTES)})",
                          type=photo.PHOTO_TYPES, key="photo_upload", max_upload_size=ui.upload_limit_mib(MAX_FILE_BYTES))
    if up is not None:
        data, name = up.getvalue(), up.name
elif source == "Camera":
    snap = st.camera_input("Take a snapshot", key="photo_camera")
    if snap is not None:
        data, name = snap.getvalue(), "snapshot.jpg"
else:
    samples = photo.sample_photos()
    if samples:
        title = st.selectbox("Sample photo", list(samples), key="photo_sample")
        data, name = samples[title].read_bytes(), samples[title].name
    else:
        st.info("No bundled sample photos found.")

if data is None:
    st.info("Choose a photo to analyse.")
    st.stop()

try:
    with st.spinner("Finding faces…"):
        analysis = ui.analyze_photo(data, name, min_face, onet, detector)
except ImageError as e:
    st.error(f"Cannot use this file. {e}")
    st.stop()
except Exception:  # never a traceback: the details go to the server log
    ui.show_failure("Analysing the photo")
    st.stop()

shown = photo.render(analysis, show_landmarks=landmarks, blur=blur)
counts, dets = analysis.counts, analysis.detections
alert = photo.alert_text(counts)
if alert:
    st.error(f"🚨 Alert: {alert}.")
elif not dets:
    st.warning("No faces found in this photo. Try a smaller minimum face size or a lower detection "
               "threshold, or a photo where faces are larger and face the camera.")
else:
    st.success(f"✅ All {len(dets)} {'face wears' if len(dets) == 1 else 'faces wear'} a mask.")

left, right = st.columns([3, 2], gap="large")
with left:
    h, w = shown.shape[:2]
    st.image(shown, caption=f"{name} · {w}×{h} · {len(dets)} faces · detection "
             f"{analysis.seconds * 1000:.0f} ms", width="stretch")
    st.download_button(f"Download annotated image ({fmt})", lambda: photo.encode_image(shown, fmt),  # on click
                       file_name=photo.download_name(name, fmt),
                       mime="image/png" if fmt == "PNG" else "image/jpeg", on_click="ignore")
with right:
    ui.count_metrics(counts)
    st.plotly_chart(charts.counts_bar(counts), key="photo_counts_chart")
if dets:
    st.subheader("Faces")
    st.dataframe(photo.face_rows(dets), hide_index=True, width="stretch", column_config={
        "face score": st.column_config.NumberColumn(
            help="The detector's face probability. Faces under 20 px found by the small-face pass "
                 "show it times the detection threshold, so they rank after the others.")})
