# A training worker. BASE and EXTRAS pick the flavour:
#   GPU (default): a CUDA runtime image and the `gpu` extra (vLLM, flash-attn, DeepSpeed, CUDA torch)
#   CPU:           --build-arg BASE=python:3.11-slim --build-arg EXTRAS=train
ARG BASE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
FROM ${BASE}
ARG EXTRAS=gpu
RUN if ! command -v python3 >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python3-pip && \
      rm -rf /var/lib/apt/lists/*; fi
RUN python3 -m venv /venv
ENV PATH=/venv/bin:$PATH
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY store store
COPY api api
COPY workers workers
COPY cli cli
COPY migrations migrations
COPY frpo_core frpo_core
# Editable, so store/migrate.py finds migrations/ beside the packages.
RUN pip install --no-cache-dir -e ".[${EXTRAS}]"
ENV FRPO_DATA_DIR=/data
CMD ["frpo", "worker", "--queue", "gpu"]
