# The GPU training worker: vLLM, DeepSpeed and CUDA torch from PyPI, whose nvidia-* wheels carry the CUDA libraries,
# so a plain Python base is enough; the host needs only the NVIDIA driver and container toolkit (torch 2.13's CUDA 13
# wheels want a driver of the 580 series or newer).
#
# The packages come from docker/gpu-requirements.txt, not from pyproject's extras: vLLM 0.30 needs fastapi < 0.137
# and the service pins 0.163.2, so that file is the resolved set (the service's pins, fastapi moved; the GPU worker
# serves no API), checked by tests/docker/test_gpu_requirements.py. The project itself goes in with --no-deps.
#
# flash-attn is opt-in: PyPI has only its source, which needs the CUDA compiler and torch at build time and fails on
# a runtime image. Pass a prebuilt wheel matching torch 2.13, CUDA 13 and CPython 3.11 (flash-attn's GitHub
# releases): --build-arg FLASH_ATTN_WHEEL=https://github.com/.../flash_attn-...-cp311-cp311-linux_x86_64.whl
# Without it, jobs with attn_implementation "auto" use PyTorch's SDPA.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
# Triton compiles its kernel launchers with the system C compiler at run time; bubblewrap is the sandbox for
# model-written code (frpo_core/capability/sandbox.py).
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev bubblewrap && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /venv
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY docker/gpu-requirements.txt docker/gpu-requirements.txt
RUN pip install --no-cache-dir -r docker/gpu-requirements.txt
ARG FLASH_ATTN_WHEEL=""
RUN if [ -n "${FLASH_ATTN_WHEEL}" ]; then pip install --no-cache-dir --no-deps "${FLASH_ATTN_WHEEL}"; fi
COPY store store
COPY api api
COPY workers workers
COPY cli cli
COPY analysis analysis
COPY frpo_client frpo_client
COPY migrations migrations
COPY frpo_core frpo_core
RUN pip install --no-cache-dir --no-deps -e .
ENV FRPO_DATA_DIR=/data HF_HOME=/cache/huggingface XDG_CACHE_HOME=/cache NLTK_DATA=/cache/nltk_data \
    LITELLM_LOCAL_MODEL_COST_MAP=True
CMD ["frpo", "worker", "--queue", "gpu"]
