# The API, migrations and CLI: the service without torch.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY store store
COPY api api
COPY workers workers
COPY cli cli
COPY migrations migrations
COPY frpo_core frpo_core
# Editable, so store/migrate.py finds migrations/ beside the packages.
RUN pip install --no-cache-dir -e .
ENV FRPO_DATA_DIR=/data
EXPOSE 8000
CMD ["frpo", "api", "--host", "0.0.0.0", "--port", "8000"]
