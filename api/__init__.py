"""The REST API (FastAPI). Imports no torch."""
