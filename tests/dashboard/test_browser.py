"""The compare, frontier and capability pages in a real browser: `streamlit run` on 127.0.0.1, Debian's chromium
headless via playwright.

The screenshots are saved as test artifacts (in $FRPO_TEST_ARTIFACTS if set, else the test's tmp dir) and never
become the docs' pictures: those are of a real demo run's store (scripts/dashboard_screenshots.py), as this test's
runs are synthetic.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from testkit.dashboard import (
    CHROMIUM,
    TRACE_NAMES_JS,
    chromium,
    compare_url,
    first_chart_ms,
    streamlit_server,
    wait_quiet,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"needs Debian's chromium at {CHROMIUM}"),
]


def test_compare_page_in_chromium(live, tmp_path):
    with streamlit_server(live.url, live.seeded.read_key, tmp_path / "streamlit.log") as web, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1750})
        elapsed = first_chart_ms(page, compare_url(web, live.seeded.finetune_ids()))
        wait_quiet(page, charts=4)
        names = page.evaluate(TRACE_NAMES_JS)
        assert len(names) == 4
        assert {"GRPO (baseline)", "FRPO λ=0.5", "FRPO λ=2"} <= set(names[0])  # both methods' lines are drawn
        assert page.get_by_text("Does safety survive fine-tuning?").is_visible()
        assert page.locator('[data-testid="stException"]').count() == 0
        shot = screenshot(page, "compare.png", tmp_path)
        print(f"first chart after {elapsed:.0f} ms; screenshot {shot}")


def test_a_pinned_reference_the_metrics_and_the_samples_pages_in_chromium(live, tmp_path):
    picked = live.seeded.finetune_ids()
    with streamlit_server(live.url, live.seeded.read_key, tmp_path / "streamlit.log") as web, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1750})
        page.goto(compare_url(web, picked) + "&ref=FRPO%20%CE%BB%3D2", wait_until="commit")
        wait_quiet(page, charts=4)
        names = page.evaluate(TRACE_NAMES_JS)
        lines = [name for name in names[0] if " band" not in name]
        assert lines[0] == "FRPO λ=2 (reference)" and "GRPO" in lines
        page.get_by_text("Reference", exact=True).wait_for(timeout=30_000)  # the sidebar's picker, showing the pin
        page.goto(f"{web}/metrics?runs={','.join(picked[:2])}&keys=eval/refusal_rate&ref={picked[0]}&diff=1")
        wait_quiet(page, charts=1)
        [lines] = page.evaluate(TRACE_NAMES_JS)
        assert lines[0].endswith("(reference)") and len(lines) == 2
        assert page.locator('[data-testid="stException"]').count() == 0
        page.goto(f"{web}/samples?run={picked[0]}", wait_until="commit")
        page.get_by_text("2 of 4 prompts changed verdict.").wait_for(timeout=60_000)
        page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60_000)  # the two steps side by side
        assert page.locator('[data-testid="stException"]').count() == 0


@contextmanager
def sweep_page(api, view: str, sweep: str, tmp_path: Path, *, height: int, charts: int) -> Iterator:
    """A dashboard page of one sweep, served against `api`, open in chromium once its `charts` have drawn."""
    with streamlit_server(api.url, api.seeded.read_key, tmp_path / "streamlit.log") as web, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": height})
        page.goto(f"{web}/{view}?sweep={sweep}", wait_until="commit")
        wait_quiet(page, charts=charts)
        yield page


def test_frontier_page_in_chromium(frontier_api, tmp_path):
    sweep = frontier_api.seeded.sweeps["frontier"]
    with sweep_page(frontier_api, "frontier", sweep, tmp_path, height=1500, charts=1) as page:
        [names] = page.evaluate(TRACE_NAMES_JS)
        assert {"GRPO frontier (best over its budgets)", "GRPO budgets (mean over seeds)", "FRPO λ=0.5"} <= set(names)
        assert page.get_by_text("→ more robust.").is_visible()
        assert page.get_by_text("→ beyond GRPO's reach").is_visible()
        assert page.get_by_text("Holm-corrected across the λ compared", exact=False).first.is_visible()
        assert page.locator('[data-testid="stException"]').count() == 0
        screenshot(page, "frontier.png", tmp_path)


def test_benchmarks_page_in_chromium(math_api, tmp_path):
    sweep = math_api.seeded.sweeps["toy math frontier"]
    with sweep_page(math_api, "capability", sweep, tmp_path, height=1450, charts=2) as page:
        lam, bars = page.evaluate(TRACE_NAMES_JS)
        assert {"FRPO", "GRPO baseline (steps 40), λ → ∞", "GRPO baseline (steps 160), λ → ∞"} <= set(lam)
        assert set(bars) == {"before fine-tuning", "after fine-tuning"}
        assert page.get_by_text("Benchmarks before and after fine-tuning", exact=True).is_visible()
        assert page.locator('[data-testid="stException"]').count() == 0
        screenshot(page, "benchmarks.png", tmp_path)
        tables = page.locator('[data-testid="stDataFrame"]')
        assert tables.count() == 2  # per setting, and every evaluation run
        tables.last.scroll_into_view_if_needed()
        assert tables.last.is_visible() and page.get_by_text("Every evaluation run").is_visible()


def screenshot(page, name: str, tmp_path: Path) -> Path:
    """Save the page as a test artifact."""
    artifacts = Path(os.environ.get("FRPO_TEST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / name
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 50_000
    return shot
