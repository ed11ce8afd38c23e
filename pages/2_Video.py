"""Video: upload a clip (or use the bundled sample) -> annotated H.264 mp4 with person ids,
people counted, counts over time, summary, CSV; optionally the people logged to the dashboard."""
import streamlit as st

from pipeline.ui import charts
from pipeline.ui import session as ui
from pipeline.streams import video
from pipeline.engine.config import DEFAULT_MEDIA_DETECTOR, DetectorConfig
from pipeline.media.images import mib

ui.page_setup("Video")
st.title("🎞️ Video")

with st.sidebar:
    st.header("Settings")
    detector = ui.detector_select("video_detector", DEFAULT_MEDIA_DETECTOR)
    every_n = st.number_input("Detect on every n-th frame", 1, 30, 1, step=1, key="video_every_n",
                              help="1 = every frame. Frames in between reuse the last detections "
                                   "for drawing, which is n times faster.")
    min_face = st.slider("Minimum face size (px)", 10, 200, int(DetectorConfig.min_face), step=2,
                         key="video_min_face",
                         help="Smallest face side to look for. Below 20, a second pass looks for faces "
                              "under 20 px (about 1.5-1.8x the time); 20 or more is faster.")
    onet = st.slider("Detection threshold", 0.50, 0.99, float(DetectorConfig.thresholds[2]), step=0.01,
                     key="video_onet")
    landmarks = st.toggle("Show landmarks", value=False, key="video_landmarks")
    blur = st.toggle("Blur faces (privacy)", value=False, key="video_blur")
    st.header("People")
    log_people = st.toggle("Log people to the dashboard", value=False, key="video_log",
                           help="Write each person of the next processed video (first and last "
                                "seen, label, confidence, frames; never an image) to the "
                                "database the Dashboard page reads. Off for uploads by default.")
engine = ui.require_engine(detector)
ui.sidebar_facts(engine)
facts = ui.engine_facts(engine)

limit = mib(video.MAX_VIDEO_BYTES)
st.caption(f"mp4, mov, webm or avi, up to {limit}. Processed on {facts['device']}, "
           f"streamed frame by frame; the result is an H.264 mp4 without sound (frames larger "
           f"than {video.MAX_OUTPUT_SIDE} px are scaled down).")
source = st.radio("Video from", ["Upload", "Sample clip"], horizontal=True, key="video_source",
                  help="The sample clip: six people passing a camera, with and without masks "
                       "(openly licensed faces; see pipeline/samples/SOURCES.md).")
if source == "Upload":
    up = st.file_uploader(f"A video (up to {limit})", type=video.VIDEO_TYPES, key="video_upload",
                          max_upload_size=ui.upload_limit_mib(video.MAX_VIDEO_BYTES))    # refused in the browser past it
else:
    up = ui.sample_clip_upload()
    if up is None:
        st.info("No bundled sample clip was found in pipeline/samples/.")
        st.stop()
if up is None:
    st.info("Upload a video to annotate, or choose the sample clip.")
    st.stop()

job = (up.file_id, up.size, int(every_n), min_face, onet, landmarks, blur, detector)
result = st.session_state.get("video_result")
if result is not None and st.session_state.get("video_job") != job:
    result = None
if st.button("Process video", type="primary", key="video_go"):
    bar = st.progress(0.0, text="Starting…")
    try:
        result = ui.process_uploaded_video(
            up, engine, int(every_n), min_face, onet, landmarks, blur,
            on_progress=lambda p: bar.progress(p.fraction, text=p.text()), log_people=log_people)
    except video.VideoError as e:
        bar.empty()
        st.error(f"Cannot process this video: {e}.")
        st.stop()
    except Exception:  # never a traceback: the details go to the server log
        bar.empty()
        ui.show_failure("Processing the video")
        st.stop()
    st.session_state["video_result"], st.session_state["video_job"] = result, job
if result is None:
    if source != "Upload":
        st.video(up.getvalue(), format="video/mp4")      # the input, before processing
    st.info(f"{up.name}: {mib(up.size)}. Press **Process video** to start.")
    st.stop()

s = result.summary
if s.log_error:
    st.warning(s.log_error)
if s.frames_failed:
    st.warning(f"{s.frames_failed} frame(s) could not be decoded and were skipped; the other "
               f"{s.frames_written} frames are in the result.")
if s.unmasked_share > 0:
    st.error(f"🚨 Someone without a mask or wearing it incorrectly is visible in "
             f"{s.unmasked_share:.0%} of the frames.")
elif s.max_faces == 0:
    st.warning("No faces were found in this video.")

left, right = st.columns([3, 2], gap="large")
with left:
    st.video(result.video_bytes, format="video/mp4")
    st.download_button("Download annotated video (mp4)", result.video_bytes, file_name=result.name,
                       mime="video/mp4", on_click="ignore", key="video_download")
with right:
    st.subheader("Summary")
    c1, c2 = st.columns(2)
    c1.metric("frames", s.frames_written)
    c2.metric("people", s.people if s.people is not None else "–",
              help="Different people in the video: a face tracked over 3 detected frames is a "
                   "person (the #number on its box); someone out of view for more than 2 s "
                   "counts again.")
    c1.metric("most faces at once", s.max_faces)
    c2.metric("unmasked frames", f"{s.unmasked_share:.0%}",
              help="Share of frames with someone without a mask or wearing it incorrectly.")
    c1.metric("processing speed", f"{s.frames_written / s.seconds:.1f} fps" if s.seconds else "–")
    c2.metric("logged", s.people_logged if result.logged and not s.log_error else "off",
              help="People written to the Dashboard's database ('Log people to the dashboard').")
    if s.people is not None:
        st.caption(f"People by label: {ui.people_text(s.people_counts)}")
    st.caption(f"{s.width}×{s.height} at {s.fps:.2f} fps, {s.duration:.1f} s; "
               + (f"face detector: {ui.detector_label(s.detector)}; " if s.detector else "")
               + f"detector ran on {s.frames_detected} frames (every {s.every_n}); encoder {s.encoder}; "
               f"took {s.seconds:.1f} s" + (f"; most faces at {s.max_faces_time:.1f} s"
                                            if s.max_faces_time is not None else ""))
times, series = s.series()
st.plotly_chart(charts.counts_over_time(times, series), key="video_counts_chart")
st.download_button("Download per-frame counts (CSV)", s.csv(), file_name=result.name.replace(".mp4", ".csv"),
                   mime="text/csv", on_click="ignore", key="video_csv")
