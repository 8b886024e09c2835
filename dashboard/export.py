"""Charts as PDF, for papers that want one: plotly's own static export (kaleido) draws the figure with plotly.js in a
headless Chrome on the dashboard's host, so the PDF is the chart on the page, as its PNG and SVG are (plotly.js draws
those in the person's browser; it has no PDF). Pure (no Streamlit)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import plotly.graph_objects as go
from choreographer.browsers.chromium import Chromium

from dashboard.charts import HEIGHT

PDF_WIDTH = 1000  # px: a page-wide chart (the page stretches it to the window; a file needs a size)
NO_CHROME = (
    "PDF needs Chrome or Chromium where the dashboard runs (`apt-get install chromium`, or `plotly_get_chrome`; "
    "`BROWSER_PATH` names one elsewhere)"
)


@cache
def chrome() -> str | None:
    """The Chrome or Chromium kaleido will draw with (`BROWSER_PATH`, one on PATH, or one `plotly_get_chrome`
    fetched), or None; looked up once per process."""
    path = Chromium.find_browser(skip_local=False)
    return path if path and Path(path).is_file() else None


def pdf(fig: go.Figure) -> bytes:
    """The figure as a vector PDF, `PDF_WIDTH` wide and its own height."""
    return fig.to_image(format="pdf", width=PDF_WIDTH, height=fig.layout.height or HEIGHT)
