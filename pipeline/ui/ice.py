"""WebRTC ICE servers for the webcam page: a setting (MASKWATCH_ICE=local|hf|twilio|auto), since
tests and a single machine want none and a deployed Space wants TURN."""
from __future__ import annotations

import logging
import os

from pipeline.settings import current as current_settings

log = logging.getLogger("maskwatch.webcam")

ICE_MODES = ("local", "hf", "twilio", "auto")
GOOGLE_STUN = {"urls": ["stun:stun.l.google.com:19302"]}


def ice_mode(env=None) -> str:
    """MASKWATCH_ICE, else 'auto' on a Hugging Face Space (SPACE_ID set), else 'local'."""
    env = os.environ if env is None else env
    mode = current_settings(env).ice
    if not mode:
        return "auto" if env.get("SPACE_ID") else "local"
    if mode not in ICE_MODES:
        raise ValueError(f"MASKWATCH_ICE={mode!r}: expected one of {', '.join(ICE_MODES)}")
    return mode


def ice_configuration(mode: str | None = None, env=None) -> tuple[dict | None, str]:
    """-> (rtc_configuration for webrtc_streamer, a note for the page).

    local:  {"iceServers": []}: host candidates only; browser and server on one machine/LAN.
    hf:     TURN credentials from HF_TOKEN (streamlit_webrtc.credentials.get_hf_ice_servers)
            plus Google STUN.
    twilio: TWILIO_ACCOUNT_SID + TWILIO_AUTH_TOKEN (needs the twilio package).
    auto:   None: streamlit-webrtc picks (Cloudflare, Twilio, HF_TOKEN, else Google STUN).
    A provider that fails falls back to Google STUN, with the reason in the note.
    """
    env = os.environ if env is None else env
    mode = mode or ice_mode(env)
    if mode == "local":
        return {"iceServers": []}, "ICE: local (no STUN/TURN servers)"
    if mode == "auto":
        return None, "ICE: automatic (streamlit-webrtc picks TURN from the environment, else STUN)"
    from streamlit_webrtc import credentials
    try:
        if mode == "hf":
            token = env.get("HF_TOKEN")
            if not token:
                raise ValueError("HF_TOKEN is not set")
            servers = list(credentials.get_hf_ice_servers(token)) + [GOOGLE_STUN]
            return {"iceServers": servers}, "ICE: Hugging Face TURN (HF_TOKEN)"
        if mode == "twilio":
            sid, tok = env.get("TWILIO_ACCOUNT_SID"), env.get("TWILIO_AUTH_TOKEN")
            if not (sid and tok):
                raise ValueError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must both be set")
            servers = list(credentials.get_twilio_ice_servers(sid, tok))
            return {"iceServers": servers}, "ICE: Twilio TURN"
    except Exception as e:
        log.warning("ICE mode %s failed (%s); using STUN only", mode, e)
        return {"iceServers": [GOOGLE_STUN]}, f"ICE: {mode} failed ({e}); STUN only, may not connect behind NAT"
    raise ValueError(f"unknown ICE mode {mode!r}")
