"""Screenshots of the dashboard over a real run's store, for docs/dashboard.md: the compare and frontier pages of a
`frpo demo` sweep, and the benchmarks page of a `frpo demo --setting math` sweep.

    PYTHONPATH=. .venv/bin/python scripts/dashboard_screenshots.py --store var            # after `frpo demo`
    PYTHONPATH=. .venv/bin/python scripts/dashboard_screenshots.py --math-store var-math  # after the math demo

`--store` is a demo's data folder (FRPO_DATA_DIR; its SQLite store and admin key). The real API is served over it
(read only) on a free port, `streamlit run dashboard/app.py` against that, and Debian's chromium (playwright, no
browser download) loads each page of the newest sweep and saves it, reduced to a 256-colour PNG so each stays well
under 300 KB. It prints what a caption needs: the sweep, its runs' seeds, the commit, the date and the machine.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

from frpo_client import Client
from testkit.dashboard import chromium, serve_api, streamlit_server, wait_quiet

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 1400
# (file, dashboard page, charts the page draws, viewport height) per demo setting
SAFETY_PAGES = (("compare.png", "", 4, 1750), ("frontier.png", "frontier", 1, 1500))
MATH_PAGES = (("benchmarks.png", "capability", 2, 1450),)
# Streamlit draws grey placeholders (skeletons) where a table or picker is still coming: wait until none is left
SETTLED_JS = "() => document.querySelectorAll('[data-testid=\"stSkeleton\"]').length === 0"


def newest_sweep(client: Client) -> dict:
    sweeps = client.list_sweeps(limit=1)["items"]
    if not sweeps:
        raise SystemExit("no sweep in this store: run `frpo demo` (or `frpo demo --setting math`) on it first")
    return client.get_sweep(sweeps[0]["id"])


def shoot(store: Path, pages: tuple[tuple[str, str, int, int], ...], out: Path) -> None:
    """Each of `pages` of the store's newest sweep, saved under `out`; then the facts a caption names."""
    key = (store / "admin.key").read_text().strip()
    database_url = f"sqlite:///{store.resolve() / 'frpo.db'}"
    with tempfile.TemporaryDirectory() as scratch, serve_api(database_url, store.resolve()) as api:
        sweep = newest_sweep(Client(api, key))
        log = Path(scratch) / "streamlit.log"
        with streamlit_server(api, key, log) as web, chromium() as browser:
            for name, view, charts, height in pages:
                page = browser.new_page(viewport={"width": WIDTH, "height": height})
                page.goto(f"{web}/{view}?sweep={sweep['id']}", wait_until="commit")
                wait_quiet(page, charts=charts, timeout_ms=180_000)
                page.wait_for_function(SETTLED_JS, timeout=180_000, polling=200)  # tables and pickers drawn too
                if page.locator('[data-testid="stException"]').count():
                    raise SystemExit(f"{name}: the page shows an error; see {log}")
                path = out / name
                page.screenshot(path=str(path))
                Image.open(path).convert("RGB").quantize(256).save(path, optimize=True)
                print(f"{path}: {path.stat().st_size // 1024} KB")
                page.close()
    print(caption_facts(sweep))


def caption_facts(sweep: dict) -> str:
    seeds = sorted({job["spec"].get("seed") for job in sweep["jobs"] if job["kind"] == "train"})
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), platform.processor())
    return (
        f"sweep {sweep['name']!r} ({sweep['id']}): {len(sweep['jobs'])} jobs, seeds {seeds}; commit {commit}; "
        f"taken {datetime.date.today().isoformat()}; {os.cpu_count()} CPU cores ({cpu}), {platform.system()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, help="data folder of a `frpo demo` run: compare.png, frontier.png")
    parser.add_argument("--math-store", type=Path, help="data folder of a `frpo demo --setting math` run")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where the PNGs go (default: docs/)")
    args = parser.parse_args()
    if args.store is None and args.math_store is None:
        parser.error("give --store, --math-store or both")
    if args.store is not None:
        shoot(args.store, SAFETY_PAGES, args.out)
    if args.math_store is not None:
        shoot(args.math_store, MATH_PAGES, args.out)


if __name__ == "__main__":
    main()
