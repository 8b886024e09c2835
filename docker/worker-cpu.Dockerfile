# The CPU training worker: the `train` pins with CPU torch, the benchmarks (`bench-eval`: lm-eval, EvalPlus's data
# loader) and the API judges (`judges`: litellm, used only with OPENAI_API_KEY).
#
# TORCH_SOURCE: pip options that say where torch comes from. The default, PyTorch's CPU wheel index, gives the CPU
# build (about 200 MB); torch from PyPI would be the CUDA build (several GB) that a CPU worker never uses. To use a
# local wheel folder served over HTTP: --build-arg TORCH_SOURCE="--no-index --find-links http://127.0.0.1:8765/".
# torch is installed alone and without its dependencies; they come from PyPI with the rest of the pins.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
# bubblewrap: the sandbox for model-written code (frpo_core/capability/sandbox.py)
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap && rm -rf /var/lib/apt/lists/*
ARG TORCH_SOURCE="--index-url https://download.pytorch.org/whl/cpu"
ARG EXTRAS="train bench-eval judges"
RUN python3 -m venv /venv
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY docker/requirements.py docker/requirements.py
RUN python3 docker/requirements.py ${EXTRAS} > /tmp/requirements.txt && \
    pip install --no-cache-dir --no-deps ${TORCH_SOURCE} "$(grep '^torch==' /tmp/requirements.txt)" && \
    pip install --no-cache-dir -r /tmp/requirements.txt && rm /tmp/requirements.txt && \
    python -c "import torch; assert not torch.version.cuda, f'torch {torch.__version__} is a CUDA build: set TORCH_SOURCE'"
COPY store store
COPY api api
COPY workers workers
COPY cli cli
COPY analysis analysis
COPY frpo_client frpo_client
COPY migrations migrations
COPY frpo_core frpo_core
# Editable, so store/migrate.py finds migrations/ beside the packages.
RUN pip install --no-cache-dir --no-deps -e .
# Model weights, datasets and benchmark data (Hugging Face, lm-eval, EvalPlus, NLTK) download once into /cache,
# a volume in docker-compose.yml. litellm uses its bundled price map (it would fetch one at import).
ENV FRPO_DATA_DIR=/data HF_HOME=/cache/huggingface XDG_CACHE_HOME=/cache NLTK_DATA=/cache/nltk_data \
    LITELLM_LOCAL_MODEL_COST_MAP=True
CMD ["frpo", "worker", "--queue", "cpu"]
