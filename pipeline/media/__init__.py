"""Pixels in and out: safe image decoding with limits, and drawing detections onto images."""
