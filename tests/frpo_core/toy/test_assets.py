"""Every shipped toy file is what the code that claims to make it writes."""

from __future__ import annotations

import json

import pytest

from frpo_core.toy.assets import SHIPPED, asset_path, write_shipped


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_each_shipped_toy_file_holds_its_builders_rows(name):
    shipped = [json.loads(line) for line in asset_path(name).read_text(encoding="utf-8").splitlines()]
    assert shipped == SHIPPED[name]()


def test_writing_them_again_gives_the_shipped_bytes(tmp_path):
    written = write_shipped(tmp_path)
    assert [path.relative_to(tmp_path).as_posix() for path in written] == list(SHIPPED)
    for path, name in zip(written, SHIPPED, strict=True):
        assert path.read_bytes() == asset_path(name).read_bytes(), name
