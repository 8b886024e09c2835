"""The frpo-lab dashboard: GRPO against FRPO under downstream fine-tuning, from the service's REST API.

    FRPO_API_URL=http://127.0.0.1:8000 FRPO_DASHBOARD_API_KEY=<a read key> streamlit run dashboard/app.py

Compare (the paper's Figure 1 for your own runs) is the home page; Sweep, Frontier (robustness against the KL moved
in RL), Capability (benchmarks before and after fine-tuning, the paper's math setting), Metrics (any series across
any runs), Samples (the judged answers behind a rate), Run and Jobs are one click away. The dashboard needs only
the API and a read-scoped key (`frpo keys create --scope read`): no database, no torch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path, not the repository root the pages import from.
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from dashboard.ui import image_format_picker  # noqa: E402  (needs the path above)

st.set_page_config(page_title="frpo-lab", page_icon=":material/shield:", layout="wide")

PAGES = [
    st.Page("views/compare.py", title="Compare", icon=":material/show_chart:", url_path="compare", default=True),
    st.Page("views/sweep.py", title="Sweep", icon=":material/tune:", url_path="sweep"),
    st.Page("views/frontier.py", title="Frontier", icon=":material/insights:", url_path="frontier"),
    st.Page("views/capability.py", title="Capability", icon=":material/fact_check:", url_path="capability"),
    st.Page("views/metrics.py", title="Metrics", icon=":material/stacked_line_chart:", url_path="metrics"),
    st.Page("views/samples.py", title="Samples", icon=":material/rate_review:", url_path="samples"),
    st.Page("views/run.py", title="Run", icon=":material/monitoring:", url_path="run"),
    st.Page("views/jobs.py", title="Jobs", icon=":material/list_alt:", url_path="jobs"),
]

page = st.navigation(PAGES)
image_format_picker()  # before the page, so a page that stops early keeps the choice
page.run()
