"""The detector and classifier in torch, and nothing else: nets, boxes, crops, the MTCNN cascade
(per frame, batched, temporal), the mask classifier, MaskDetector, and weights loading.

Knows nothing of Streamlit, Plotly, the database, frame loops or people (import-linter checks).
"""
