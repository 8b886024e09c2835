# The dashboard: Streamlit over the API's REST endpoints. No torch, no database driver needed at run time: it reads
# everything over HTTP with a read-scoped key (FRPO_API_URL, FRPO_DASHBOARD_API_KEY). Its Frontier and Benchmarks
# pages import `analysis` (the same comparisons the CLI prints), so the image holds that package too.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
RUN python3 -m venv /venv
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY docker/requirements.py docker/requirements.py
RUN python3 docker/requirements.py dashboard > /tmp/requirements.txt && \
    pip install --no-cache-dir -r /tmp/requirements.txt && rm /tmp/requirements.txt
COPY dashboard dashboard
COPY analysis analysis
COPY frpo_client frpo_client
# Only dashboard/ and analysis/ are copied, so the wheel holds only them.
RUN pip install --no-cache-dir --no-deps .
ENV FRPO_API_URL=http://api:8000
EXPOSE 8501
HEALTHCHECK --interval=10s --timeout=5s --retries=10 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health')"]
CMD ["streamlit", "run", "dashboard/app.py", "--server.headless=true", "--server.address=0.0.0.0", \
     "--server.port=8501", "--browser.gatherUsageStats=false", "--client.toolbarMode=viewer", \
     "--server.fileWatcherType=none"]
