"""Celery workers: the only place where the service meets frpo_core."""
