"""Charts as PDF: kaleido draws the figure with plotly.js in the host's Chrome; without one the page says how to get
it instead of offering a button that would fail."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from dashboard import export
from testkit.dashboard import CHROMIUM
from tests.dashboard.test_pages import run, texts


@pytest.fixture
def no_chrome(monkeypatch, tmp_path):
    """A host whose only browser is one that is not there (`BROWSER_PATH`, as kaleido reads it)."""
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-chrome"))
    export.chrome.cache_clear()
    yield
    export.chrome.cache_clear()


@pytest.mark.skipif(not export.chrome(), reason=f"needs a Chrome or Chromium (Debian's: {CHROMIUM})")
def test_a_chart_is_a_pdf_of_the_charts_own_height():
    fig = go.Figure(go.Scatter(x=[0, 1, 2], y=[0.9, 0.5, 0.4], name="GRPO"), layout=dict(height=520))
    pdf = export.pdf(fig)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert b"/MediaBox [0 0 750 390]" in pdf  # 1000 × 520 px at 96 dpi, in points


def test_without_chrome_there_is_no_pdf_to_offer(no_chrome):
    assert export.chrome() is None


@pytest.mark.integration
@pytest.mark.usefixtures("fresh_cache", "no_chrome")
def test_without_chrome_each_chart_says_how_to_get_its_pdf(live, use_api):
    use_api(live.url, live.seeded.read_key)
    at = run(runs=",".join(live.seeded.finetune_ids()))
    assert "Download PDF" not in [b.proto.label for b in at.get("download_button")]
    assert "PDF needs Chrome or Chromium where the dashboard runs (`apt-get install chromium`" in texts(at.caption)
