"""Tests of the REST API against real databases (SQLite and PostgreSQL)."""
