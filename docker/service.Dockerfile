# The API, migrations and CLI: the service without torch. `cli` imports `analysis` (the comparisons `frpo demo`
# prints), so the image holds it; `frpo_core` is here for the modules the CLI names, never imported by the API.
# BASE_IMAGE: any image with python3 >= 3.11 and its venv module (the docker test builds a local Debian bookworm one,
# so nothing is pulled).
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
RUN python3 -m venv /venv
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1
WORKDIR /app
# The pinned dependencies first, from pyproject.toml: a code change rebuilds only the layers below.
COPY pyproject.toml README.md alembic.ini ./
COPY docker/requirements.py docker/requirements.py
RUN python3 docker/requirements.py > /tmp/requirements.txt && \
    pip install --no-cache-dir -r /tmp/requirements.txt && rm /tmp/requirements.txt
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
ENV FRPO_DATA_DIR=/data
EXPOSE 8000
CMD ["frpo", "api", "--host", "0.0.0.0", "--port", "8000"]
