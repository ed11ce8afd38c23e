"""People, not frames: the face tracker (detections -> tracks -> PersonEvents) and the counter
that feeds closed people to the store."""
