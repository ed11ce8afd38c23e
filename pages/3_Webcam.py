"""Webcam: live detection over WebRTC, person ids and people counted, live counts, FPS, rolling
chart, spoken alert + banner; optionally the people logged to the dashboard."""
import time

import streamlit as st
import streamlit_webrtc
from streamlit_webrtc import WebRtcMode

from pipeline.ui import session as ui
from pipeline.ui import ice

ui.page_setup("Webcam")
st.title("📹 Webcam")
engine = ui.require_engine("camera")     # the detector fine-tuned for camera frames
ui.sidebar_facts(engine)
sess = ui.webcam_session(engine)

with st.sidebar:
    st.header("Settings")
    sess.settings.min_face = float(st.slider("Minimum face size (px)", 20, 200, 60, step=5,
                                             help="In pixels of the camera frame.", key="webcam_min_face"))
    sess.settings.onet_threshold = st.slider("Detection threshold", 0.50, 0.99, 0.70, step=0.01,
                                             key="webcam_onet")
    side = st.select_slider("Detection resolution (longer side)", [320, 480, 640, 960, 1280], value=640,
                            key="webcam_side",
                            help="Larger camera frames are scaled down to this before finding faces "
                                 "(boxes are scaled back). The minimum face size matters more for speed.")
    sess.settings.detect_side = int(side)
    sess.settings.realtime = st.toggle(
        "Fast webcam mode (temporal reuse)", value=True, key="webcam_realtime",
        help="Faces found in the last frame are refined where they are, and new faces are "
             "searched for in a slice of the picture per frame; labels are smoothed so they do "
             "not flicker. Several times faster than the full detector on every frame; a "
             "newcomer shows up at most a few frames late.")
    sess.settings.detect_every = int(st.number_input(
        "Detect every n-th frame", 1, 10, 1 if engine.device.type == "cuda" else 2, step=1,
        key="webcam_every",
        help="1 = run the detector on every frame. 2 = every other frame, drawing the last "
             "boxes in between: about twice the frame rate, boxes at most one frame late."))
    sess.settings.show_landmarks = st.toggle("Show landmarks", value=False, key="webcam_landmarks")
    sess.settings.blur = st.toggle("Blur faces (privacy)", value=False, key="webcam_blur")
    st.header("Alerts")
    sound = st.toggle("Spoken alert", value=True, key="webcam_sound",
                      help="Says 'Please wear your mask' (or 'Please cover your nose'), at most "
                           "once every 10 s, when someone is unmasked; a beep where the browser "
                           "cannot speak.")
    lang = ui.alert_language_select()
    banner = st.toggle("Alert banner", value=True, key="webcam_banner")
    st.header("People")
    sess.people.set_logging(st.toggle(
        "Log people", value=False, key="webcam_log",
        help="Write each person who leaves the view (first and last seen, label, confidence, "
             "frames; never an image) to the database the Dashboard page reads."))

rtc_configuration, ice_note = ice.ice_configuration()
left, right = st.columns([3, 2], gap="large")
with left:
    ctx = streamlit_webrtc.webrtc_streamer(
        key="maskwatch-webcam",
        mode=WebRtcMode.SENDRECV,
        rtc_configuration=rtc_configuration,
        video_frame_callback=sess.callback,
        media_stream_constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480}},
                                  "audio": False},
        async_processing=True,
    )
    st.caption(f"Press START and allow the camera. Frames are processed on this server "
               f"({ui.engine_facts(engine)['device']}). {ice_note}.")
with right:
    slots = {"banner": st.empty(), "metrics": st.empty(), "audio": st.empty(), "chart": st.empty()}
status = st.empty()

tick = 0
playing = ctx.state.playing
ui.stream_state(sess, playing)          # stopped since the last run: people in view are closed
ui.render_live(sess, slots, sound, banner, tick, lang=lang)
if playing:
    status.caption("Live: counts refresh twice a second, the chart every second.")
else:
    status.info("The camera is off. Press START to begin; counts and the chart update while it runs.")
while ctx.state.playing:
    time.sleep(0.5)
    tick += 1
    ui.render_live(sess, slots, sound, banner, tick, chart=tick % 2 == 0, lang=lang)
ui.stream_state(sess, False)
