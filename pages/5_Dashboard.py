"""Dashboard: the people the cameras counted, from the event store (counts, labels and times;
never an image)."""
import streamlit as st

from pipeline.ui import dashboard as dash
from pipeline.ui import session as ui
from pipeline.records import LABEL_NAMES
from pipeline.store import StoreError
from pipeline.records import CLASSES

ui.page_setup("Dashboard")
st.title("📈 Dashboard")
st.caption("People counted by the door cameras, the webcam and videos with logging on. Each "
           "person is one row: first and last seen, label, confidence, source, frames. "
           "No image or face crop is ever stored.")


def toggle_demo():
    """Runs before the rerun, so the button's label and the data shown agree."""
    st.session_state["dash_demo_on"] = not st.session_state.get("dash_demo_on", False)
    st.session_state.pop("dash_dates", None)
    st.session_state.pop("dash_sources", None)


demo = st.session_state.get("dash_demo_on", False)
st.button("Back to the real data" if demo else "Load demo data",
          key="dash_real" if demo else "dash_demo", on_click=toggle_demo,
          help=None if demo else "Show a seeded 14-day demo from three cameras (demo-entrance, "
                                 "demo-lobby, demo-garage), kept in a store of its own: the "
                                 "configured database is never touched.")

ctx = dash.open_dashboard(demo=demo)
if ctx.demo:
    st.warning("**Demo data.** Made-up people from three imaginary cameras, not counted by your "
               "cameras and not stored in your database. Press **Back to the real data** to "
               "leave the demo.", icon="🧪")
if ctx.error:
    st.error(ctx.error)
    st.stop()

if ctx.empty:
    st.info("No people logged yet. Press **Load demo data** to see a full dashboard, run "
            "`python -m pipeline watch VIDEO_OR_CAMERA` for a door camera, or turn on logging "
            "on the Webcam or Video page.")
    st.stop()

c1, c2, c3 = st.columns([2, 3, 1])
dates = c1.date_input("Dates", value=ctx.default_range(), min_value=ctx.first_day,
                      max_value=ctx.max_day, key="dash_dates")
sources = c2.multiselect("Sources", ctx.sources, default=ctx.sources, key="dash_sources")
bucket = c3.radio("People per", ["day", "hour"], horizontal=True, key="dash_bucket")

try:
    view = dash.build_view(ctx, dates, sources, bucket)
except StoreError as e:
    st.error(str(e))
    st.stop()

if view.empty:
    st.info("Nobody was counted for these dates and sources.")
    st.stop()

cols = st.columns(5)
cols[0].metric("people", f"{view.people:,}")
for k, c in enumerate(CLASSES):
    cols[k + 1].metric(LABEL_NAMES[c], f"{view.totals[c]:,}")
cols[4].metric("masked correctly", f"{view.share_masked:.0%}")

st.plotly_chart(view.flow_figure, key="dash_flow")
left, right = st.columns(2)
left.plotly_chart(view.donut_figure, key="dash_donut")
right.plotly_chart(view.share_figure, key="dash_share")

st.subheader("Recent people")
st.dataframe(view.recent_rows, hide_index=True, width="stretch")
st.download_button("Download CSV", view.csv, file_name=view.csv_name, mime="text/csv",
                   key="dash_csv", help="Every person in the chosen dates and sources.")
