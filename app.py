"""MaskWatch. Run: streamlit run app.py

The entry point lists the pages (pipeline.ui.PAGES: files under pages/, each with its title and
icon in the sidebar) with st.navigation and runs the one asked for.
"""
from pipeline import ui

ui.navigation().run()
