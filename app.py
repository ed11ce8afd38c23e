"""MaskWatch. Run: streamlit run app.py

The entry point lists the pages (pipeline.ui.session.PAGES: files under pages/, each with its title and
icon in the sidebar) with st.navigation and runs the one asked for.
"""
from pipeline.ui import session as ui

ui.navigation().run()
