"""The compare, metrics, samples, frontier and capability pages in a real browser: `streamlit run` on 127.0.0.1,
Debian's chromium headless via playwright. Beside each page's charts: a pinned reference (Compare, Metrics, Frontier,
whose baseline is picked in the sidebar), the samples filtered by verdict and compared between two steps and two runs,
and a chart downloaded as PDF.

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


def test_a_pinned_reference_on_compare_and_metrics_in_chromium(live, tmp_path):
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


def test_samples_filtered_by_verdict_and_compared_between_steps_and_runs_in_chromium(live, tmp_path):
    grpo, frpo = live.seeded.sampled_ids
    with streamlit_server(live.url, live.seeded.read_key, tmp_path / "streamlit.log") as web, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(f"{web}/samples?run={grpo}", wait_until="commit")  # its last step against its first
        page.get_by_text("2 of 4 prompts changed verdict.").wait_for(timeout=60_000)
        page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60_000)  # the two steps side by side
        page.goto(f"{web}/samples?run={grpo}&vs={frpo}&vs_step=100", wait_until="commit")  # another run, same prompts
        page.get_by_text("1 of 4 prompts changed verdict.").wait_for(timeout=60_000)
        assert page.get_by_role("heading", name="Against FRPO λ=0.5 · seed 0", exact=False).is_visible()
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_text("answered", exact=True).click()  # GRPO's answers only: FRPO refused one of the three
        page.get_by_text("1 of 3 prompts changed verdict.").wait_for(timeout=60_000)
        page.wait_for_url("**verdict=answered**", timeout=30_000)
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


def test_frontier_baseline_and_pinned_reference_in_chromium(frontier_api, tmp_path):
    sweep = frontier_api.seeded.sweeps["baselines"]
    api, key = frontier_api.url, frontier_api.seeded.read_key
    with streamlit_server(api, key, tmp_path / "streamlit.log") as web, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1500}, accept_downloads=True)
        page.goto(f"{web}/frontier?sweep={sweep}&baseline=dr_grpo&ref=FRPO%20%CE%BB%3D0.5", wait_until="commit")
        wait_quiet(page, charts=1)
        [names] = page.evaluate(TRACE_NAMES_JS)
        assert {"Dr. GRPO frontier (best over its budgets)", "FRPO λ=0.5 (reference)", "GRPO (steps 60)"} <= set(names)
        assert page.get_by_text("Against the reference: FRPO λ=0.5").is_visible()
        picker = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').filter(has_text="Frontier")
        picker.click()  # the baseline back to GRPO, in the sidebar
        page.get_by_role("option", name="GRPO", exact=True).click()
        page.wait_for_function(
            f"() => ({TRACE_NAMES_JS})()[0].includes('GRPO frontier (best over its budgets)')", timeout=60_000
        )
        assert "baseline=" not in page.url and "ref=FRPO" in page.url  # the default leaves the URL; the pin stays
        with page.expect_download(timeout=60_000) as download:
            page.get_by_role("button", name="Download PDF").first.click()
        pdf = Path(download.value.path()).read_bytes()
        assert pdf.startswith(b"%PDF-") and download.value.suggested_filename == "frontier-refusal-after-finetune.pdf"
        assert page.locator('[data-testid="stException"]').count() == 0


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
