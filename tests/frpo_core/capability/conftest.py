"""The tiny offline model, built once for the capability tests that generate with it."""

from __future__ import annotations

import pytest

from frpo_core.tiny import build_tiny_model


@pytest.fixture(scope="package")
def tiny_model(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
