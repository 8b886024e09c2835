"""Time to the first chart of the dashboard's compare page for 12 runs (2 methods × 2 λ × 3 seeds), in a real browser.

    python -m benchmarks.dashboard_load [--repeats 3] [--screenshot var/compare.png]

Needs the dashboard extra and Debian's chromium (`apt-get install chromium`; playwright drives it, no browser
download). Seeds a fresh SQLite database through the store (testkit/dashboard.py: 12 fine-tuning runs of 11
evaluations and 100 loss points each, plus their 12 RL parents of 200 steps × 9 keys), serves the real API with
uvicorn, runs `streamlit run dashboard/app.py` and loads `/?runs=<the 12 ids>` in headless chromium. The time is the
browser's own clock (performance.now()) from navigation start to plotly having drawn the first chart with its data.

Conditions, each after the dashboard's short API cache has expired (so every API read is done again):
- the very first load: a fresh Streamlit process (Python imports) and a browser that has never seen the dashboard;
- a returning visitor opening the link in a new tab: a browser profile on disk that holds Streamlit's and plotly.js's
  static files and compiled code, as a person's browser does after one visit (the usual case);
- the same, in a tab that already shows the dashboard (a reload, or a shared link pasted into it);
- a first visit: an empty browser profile, so ~7 MB of JavaScript (plotly.js alone is 4.7 MB) is fetched and
  compiled before anything is drawn.
For scale, the same is timed for a four-line Streamlit app drawing one 3-point plotly chart: the floor that Streamlit
and plotly.js set on this machine. The API reads alone are timed too, through the dashboard's client.
Target (issue 5): the first chart within 2 s of load.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from dashboard import selection
from dashboard.client import concurrently
from dashboard.keys import COMPARE_FINETUNE_KEYS as FINETUNE_KEYS
from frpo_client import Client
from testkit.dashboard import (
    chromium_profile,
    compare_url,
    first_chart_ms,
    seed,
    serve_api,
    streamlit_server,
    wait_quiet,
)

# A wait longer than the dashboard's API cache (dashboard/reads.py: SERIES_TTL = 15 s); not imported from there, as
# it needs a Streamlit runtime to import quietly.
CACHE_TTL_S = 16
FLOOR_APP = """import plotly.graph_objects as go
import streamlit as st
st.title("floor")
st.plotly_chart(go.Figure(go.Scatter(x=[1, 2, 3], y=[1, 3, 2], name="GRPO")))
"""


def api_fetch_ms(api_url: str, key: str, run_ids: list[str], repeats: int) -> list[float]:
    """What the compare page asks the API for before its first chart, through the dashboard's own client: the 200
    newest fine-tuning and RL runs (the run picker), the picked runs' lineage, and their series."""
    times = []
    for _ in range(repeats):
        client = Client(api_url, key)
        start = time.perf_counter()
        known = {j["id"]: j for kind in ("finetune", "train") for j in client.all_jobs(kind=kind, max_items=200)}
        finetune, _ = selection.split(selection.collect(client, run_ids=run_ids, known=known))
        concurrently(lambda r, c=client: c.metrics(str(r["id"]), FINETUNE_KEYS, 500), finetune)
        times.append((time.perf_counter() - start) * 1000)
        client.close()
    return times


def load(context, url: str, charts: int, page=None) -> float:
    """ms to the first chart, in a new tab of `context` (or in `page`, a tab already open)."""
    tab = page or context.new_page()
    try:
        elapsed = first_chart_ms(tab, url)
        wait_quiet(tab, charts)
        return elapsed
    finally:
        if page is None:
            tab.close()


def summary(name: str, values: list[float]) -> None:
    print(f"  {name:<62} median {statistics.median(values):6.0f} ms, max {max(values):6.0f} ms (n={len(values)})")


def measure(
    playwright, url: str, folder: Path, repeats: int, charts: int, wait_s: float, screenshot: Path | None = None
) -> None:
    """The four conditions; `wait_s` between loads lets the dashboard's API cache expire."""
    with chromium_profile(playwright, folder / "returning") as returning:
        tab = returning.new_page()
        summary("very first load (fresh Streamlit process, new browser)", [load(returning, url, charts, tab)])
        if screenshot:
            tab.set_viewport_size({"width": 1400, "height": 1750})
            time.sleep(1)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(screenshot))
            tab.set_viewport_size({"width": 1400, "height": 1000})
            print(f"  screenshot: {screenshot}")
        new_tab, same_tab, first_visit = [], [], []
        for i in range(repeats):
            time.sleep(wait_s)
            new_tab.append(load(returning, url, charts))
            time.sleep(wait_s)
            same_tab.append(load(returning, url, charts, tab))
            time.sleep(wait_s)
            with chromium_profile(playwright, folder / f"first-visit-{i}") as fresh:
                first_visit.append(load(fresh, url, charts))
        summary("returning visitor, new tab", new_tab)
        summary("returning visitor, same tab (reload / pasted link)", same_tab)
        summary("first visit (empty browser profile)", first_visit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--screenshot", type=Path, help="also save a screenshot of the compare page here")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="frpo-dashboard-bench-"))
    seeded = seed(f"sqlite:///{folder / 'frpo.db'}")
    run_ids = seeded.finetune_ids()
    print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, headless chromium")
    with serve_api(seeded.database_url, folder) as api_url, sync_playwright() as playwright:
        summary(
            "API reads before the first chart (dashboard client)", api_fetch_ms(api_url, seeded.read_key, run_ids, 5)
        )
        print("compare page, 12 fine-tuning runs + 12 RL parents, 4 charts:")
        with streamlit_server(api_url, seeded.read_key, folder / "streamlit.log") as web:
            measure(
                playwright, compare_url(web, run_ids), folder / "compare", args.repeats, 4, CACHE_TTL_S, args.screenshot
            )
        print("floor: a 4-line Streamlit app drawing one 3-point plotly chart:")
        floor_app = folder / "floor.py"
        floor_app.write_text(FLOOR_APP)
        with streamlit_server(api_url, seeded.read_key, folder / "floor.log", app=floor_app) as web:
            measure(playwright, web, folder / "floor", args.repeats, 1, 1.0)
    print("target: first chart within 2000 ms of load")


if __name__ == "__main__":
    sys.exit(main())
