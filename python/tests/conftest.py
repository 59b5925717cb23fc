"""Fixtures: a raw root key and stores in pytest's tmp_path.

Run against the installed package (scripts/python-test.sh installs ./python
into a venv and sets SHREDKV_LIBRARY); this directory has no __init__.py, so
pytest does not put the source tree's python/ on sys.path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import shredkv

KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))


@pytest.fixture
def key() -> shredkv.KeyProvider:
    return shredkv.raw_key(KEY)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[Callable[..., shredkv.Store]]:
    """open_store(directory=None, **options): opens (creating by default) a
    store with the raw test key; every store it opened is closed afterwards."""
    opened = []

    def _open(directory: Any = None, **options: Any) -> shredkv.Store:
        options.setdefault("key", shredkv.raw_key(KEY))
        options.setdefault("create", True)
        options.setdefault("durability", shredkv.Durability.NO_SYNC)
        s = shredkv.Store.open(directory if directory is not None else tmp_path / "store", **options)
        opened.append(s)
        return s

    yield _open
    for s in opened:
        s.close()


@pytest.fixture
def store(open_store: Callable[..., shredkv.Store]) -> shredkv.Store:
    return open_store()


@pytest.fixture
def ann(store: shredkv.Store) -> shredkv.PersonId:
    return store.create_person([("email", "ann@example.org"), ("phone", "+49 170 1234567")],
                               {"name": "Ann", "newsletter": True})


T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
