"""Helpers shared by the tests: local servers (hub, PostgreSQL, Streamlit), media makers, the reference MTCNN."""
