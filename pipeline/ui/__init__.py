"""The only home of streamlit, plotly and streamlit-webrtc: the pages' shared session (cached
engine, render helpers), charts, the Metrics and Dashboard views, and WebRTC ICE settings."""
