"""The frame loops of each entry point: a photo, a video file, the browser webcam callback and the
door-camera `watch` loop. They drive the engine, draw, track people and hand events to the store;
no Streamlit here."""
