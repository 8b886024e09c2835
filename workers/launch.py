"""How the training child starts: one process, or `accelerate launch` with one process per GPU (docs/method.md §2.3).

    python -m workers.launch --parent-pid PID -- <accelerate launch arguments>   # started by workers.runner

A train or finetune job with `gpu.num_gpus` > 1, or with DeepSpeed (`gpu.distributed` "zero2" | "zero3"), runs its
training child under `accelerate launch --config_file <shipped config> --num_processes N -m workers.runner --train
<id>`, inside the one worker that owns the N GPUs (product.md: no home-made scheduler). FRPOTrainer already gathers
groups that span ranks (docs/method.md §6.2), and SFTTrainer is data parallel under accelerate as it is; every rank runs
`workers.stages.work`, and only rank 0 writes metrics, events and artifacts (:func:`is_main_process`).

The launcher is started through this module rather than as `accelerate launch` directly so that it, too, dies with
the worker (PR_SET_PDEATHSIG plus a watchdog, as the single-process child does): a worker killed with SIGKILL leaves
no launcher behind to keep ranks training a job that another worker resumes. The ranks die with the launcher in
turn (their `--parent-pid` is left out, so they watch the process that started them). On a machine without CUDA the
same launcher runs the ranks on the CPU with gloo (the tests do).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import threading
import time
import uuid
from importlib.resources import files
from pathlib import Path

from store.specs import EvaluateSpec, FinetuneSpec, GpuBase, TrainSpec

ACCELERATE_CONFIGS_DIR = Path(str(files("frpo_core").joinpath("assets", "accelerate")))
ACCELERATE_CONFIGS = {
    "ddp": ACCELERATE_CONFIGS_DIR / "ddp.yaml",
    "zero2": ACCELERATE_CONFIGS_DIR / "zero2.yaml",
    "zero3": ACCELERATE_CONFIGS_DIR / "zero3.yaml",
}
"""The shipped accelerate configs by `gpu.distributed`: DDP, DeepSpeed ZeRO-2 (the authors') and ZeRO-3."""


def is_main_process() -> bool:
    """True in a single-process child and in rank 0 of a launched job: the one process that writes to the store."""
    return os.environ.get("RANK", "0") == "0"


def needs_launcher(gpu: GpuBase | None) -> bool:
    """Whether a job's child runs under `accelerate launch`: several GPUs, or DeepSpeed (which needs its config)."""
    return gpu is not None and (gpu.num_gpus > 1 or gpu.distributed != "ddp")


def free_port() -> int:
    """A TCP port nothing listens on now: the rendezvous port of one launched job (several may share a host)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_command(
    run_id: uuid.UUID,
    spec: TrainSpec | FinetuneSpec | EvaluateSpec,
    output_root: Path,
    resume: Path | None,
    parent_pid: int,
    port: int | None = None,
    *,
    attempt: int,
) -> list[str]:
    """The command line of the training child for attempt `attempt` of `spec`: `python -m workers.runner --train <id>
    --attempt <n> …`, or that module under `accelerate launch` (through this module) when the spec's `gpu` asks."""
    train = [sys.executable, "-m", "workers.runner", "--train", str(run_id), "--attempt", str(attempt)]
    train += ["--output-root", str(output_root)]
    if resume is not None:
        train += ["--resume", str(resume)]
    gpu = spec.gpu if isinstance(spec, TrainSpec | FinetuneSpec) else None
    if not needs_launcher(gpu):
        return [*train, "--parent-pid", str(parent_pid)]
    accelerate = [
        "--config_file",
        str(ACCELERATE_CONFIGS[gpu.distributed]),
        "--num_processes",
        str(gpu.num_gpus),
        "--main_process_port",
        str(port or free_port()),
        "--mixed_precision",
        "bf16" if gpu.bf16 else "no",
        "-m",
        *train[2:],  # accelerate runs `-m workers.runner …` with its own interpreter
    ]
    return [sys.executable, "-m", "workers.launch", "--parent-pid", str(parent_pid), "--", *accelerate]


def kill_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux's PR_SET_PDEATHSIG; elsewhere nothing)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG


def die_with_parent(parent: int) -> None:
    """Exit as soon as the parent is gone: no orphan keeps training a job someone else resumes."""
    kill_with_parent()

    def watchdog() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.5)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watchdog, name="parent-watchdog", daemon=True).start()


def accelerate_arguments(arguments: list[str], cuda: bool) -> list[str]:
    """`arguments` as accelerate should get them here: without CUDA, no mixed precision. The launcher is the same
    (torchrun's); each rank's trainer then runs on the CPU (`use_cpu`, frpo_core.jobs.rl) and accelerate joins the ranks
    with gloo, so a launched job runs on a laptop exactly as it would on GPUs, minus the GPUs."""
    arguments = list(arguments)
    script = arguments.index("-m")  # everything after it belongs to the training child
    if not cuda and "--mixed_precision" in arguments[:script]:
        arguments[arguments.index("--mixed_precision") + 1] = "no"
    return arguments


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("accelerate", nargs=argparse.REMAINDER, help="accelerate launch's arguments, after --")
    args = parser.parse_args(argv)
    die_with_parent(args.parent_pid)
    arguments = args.accelerate[1:] if args.accelerate[:1] == ["--"] else args.accelerate

    import torch
    from accelerate.commands.launch import launch_command, launch_command_parser

    launch_command(launch_command_parser().parse_args(accelerate_arguments(arguments, torch.cuda.is_available())))


if __name__ == "__main__":
    main()
