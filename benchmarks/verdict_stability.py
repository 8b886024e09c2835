"""Is the demo's verdict a property of FRPO or of the machine? The safety demo's design run three times, compared.

    python -m benchmarks.verdict_stability [--seeds 16] [--out DIR] [-- DEMO OPTIONS ...]

Runs `frpo demo --results` (each run a fresh embedded store under --out, the real service) as:

- **A**: seeds 0 … n−1, on this machine's own CPU kernels;
- **B**: seeds 100 … 100+n−1: the same design with disjoint seeds, as a second lab would run it;
- **C**: seeds 0 … n−1 with ``ATEN_CPU_CAPABILITY=default`` and ``ONEDNN_MAX_CPU_ISA=AVX2``: PyTorch's plain
  kernels instead of this CPU's vector ones (AVX2/AVX-512), and oneDNN without AVX-512 or AMX, which round
  differently, as another machine's CPU would. Capping ATen alone is not a CPU that exists: on a CPU with AMX,
  oneDNN still sends the CPU attention kernel down its AMX path, which then calls a packing routine built only into
  the AVX-512 kernels (``RuntimeError: pack_vnni2 is only supported when avx512 is supported``, in every SFT step);

then, for each FRPO setting, compares A with B and A with C (`analysis.stability`): the two gaps to GRPO's frontier
agree when their difference lies within √(ha² + hb²) of the intervals' half-widths. Prints a table and writes
``stability.json`` under --out; exits 1 unless every effect agrees (a gap without an interval, from too few seeds
inside GRPO's range, cannot be shown to agree). Options after ``--`` go to every demo run (a smaller scale, say). At
the demo's default scale this takes three demo runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from analysis.stability import Agreement, agreement
from testkit.service import free_port

RESEED = 100  # B's first seed: disjoint from A's for any n ≤ 100
RUNS = {  # name -> (first seed, extra environment)
    "A": (0, {}),
    "B": (RESEED, {}),
    "C": (0, {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "AVX2"}),
}
PAIRS = (("A", "B", "disjoint seeds"), ("A", "C", "default CPU kernels"))


def cpu_capability(env: dict[str, str]) -> str:
    """The kernel path PyTorch picks under `env` (it reads ATEN_CPU_CAPABILITY once, at import)."""
    probe = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    probed = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    return probed.stdout.strip()


def run_demo(name: str, first_seed: int, extra_env: dict[str, str], seeds: int, options: list[str], out: Path) -> dict:
    """One `frpo demo` on its own store; what it measured (its --results file) plus how it ran."""
    env = {**os.environ, **extra_env, "FRPO_DATA_DIR": str(out / f"{name}-var")}
    for inherited in ("FRPO_DATABASE_URL", "FRPO_BROKER_URL"):  # a fresh embedded store, whatever the shell has
        env.pop(inherited, None)
    results = out / f"{name}.json"
    command = [sys.executable, "-m", "cli", "demo", "--seeds", str(seeds), "--first-seed", str(first_seed)]
    command += ["--results", str(results), "--port", str(free_port()), *options]
    started = time.monotonic()
    with open(out / f"{name}.log", "w") as log:
        subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=True)
    measured = json.loads(results.read_text())
    measured["run"] = {"minutes": (time.monotonic() - started) / 60, "cpu_capability": cpu_capability(env)}
    return measured


def table(pair: str, rows: list[Agreement]) -> list[str]:
    def number(value: float | None) -> str:
        return "—" if value is None else f"{value:+.3f}"

    def interval(gap: float | None, half: float | None) -> str:
        return "—" if gap is None else f"{gap:+.3f} ± {half:.3f}" if half is not None else f"{gap:+.3f} (no int.)"

    header = f"  {'setting':<14}{'gap A':<18}{'gap other':<18}{'difference':<12}{'bound':<8}effects     labels"
    lines = [f"{pair}:", header]
    for row in rows:
        lines.append(
            f"  {row.setting:<14}{interval(row.gap_a, row.half_width_a):<18}{interval(row.gap_b, row.half_width_b):<18}"
            f"{number(row.difference):<12}{number(row.bound):<8}{row.status:<12}"
            f"{'same' if row.labels_agree else f'{row.label_a!r} vs {row.label_b!r}'}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16, help="seeds per run (each setting and GRPO budget)")
    parser.add_argument("--out", type=Path, default=Path("var/verdict-stability"), help="folder for stores and logs")
    parser.add_argument("demo_options", nargs="*", help="after --: options for every `frpo demo` run")
    args = parser.parse_args(argv)
    if args.seeds > RESEED:
        parser.error(f"--seeds {args.seeds}: at most {RESEED}, so that B's seeds ({RESEED}…) stay disjoint from A's")
    args.out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for name, (first_seed, extra_env) in RUNS.items():
        print(f"run {name}: seeds {first_seed}…{first_seed + args.seeds - 1} {extra_env or ''}", flush=True)
        runs[name] = run_demo(name, first_seed, extra_env, args.seeds, args.demo_options, args.out)
        print(f"  {runs[name]['run']['minutes']:.1f} min on {runs[name]['run']['cpu_capability']} kernels", flush=True)
    compared = {f"{a} vs {b} ({why})": agreement(runs[a]["verdicts"], runs[b]["verdicts"]) for a, b, why in PAIRS}
    lines = [line for pair, rows in compared.items() for line in table(pair, rows)]
    print("\n".join(["", *lines]))
    agree = all(row.effects_agree for rows in compared.values() for row in rows)
    print(f"\nThe effects {'agree' if agree else 'DO NOT agree'} within their intervals.")
    summary = {"runs": runs, "pairs": {pair: [asdict(row) for row in rows] for pair, rows in compared.items()}}
    (args.out / "stability.json").write_text(json.dumps({**summary, "agree": agree}, indent=1) + "\n")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
