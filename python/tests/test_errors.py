"""Status codes map to exception classes; argument errors are TypeError /
ValueError; a closed store refuses calls."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest

import shredkv
from shredkv import _ffi

from conftest import OTHER_KEY


def test_every_code_has_its_class() -> None:
    assert sorted(shredkv.ERROR_CLASSES) == list(range(1, 18))
    for code, cls in shredkv.ERROR_CLASSES.items():
        assert issubclass(cls, shredkv.Error)
        assert cls.code == code
        # The class's code_name is the library's stable name.
        assert cls.code_name == shredkv.code_name(code)
    assert shredkv.code_name(0) == "OK"
    assert shredkv.code_name(99) == "Unknown"
    assert shredkv.ERROR_CLASSES[12] is shredkv.StoreIOError


def test_error_attributes(store: shredkv.Store) -> None:
    with pytest.raises(shredkv.NotFound) as info:
        store.resolve(("email", "nobody@example.org"))
    e = info.value
    assert e.code == 1 and e.code_name == "NotFound"
    assert e.message.startswith("NotFound")
    assert str(e) == e.message
    assert isinstance(e, LookupError)
    again = pickle.loads(pickle.dumps(e))
    assert type(again) is shredkv.NotFound and again.message == e.message


def test_mixins() -> None:
    assert issubclass(shredkv.InvalidArgument, ValueError)
    assert issubclass(shredkv.StoreIOError, OSError)
    e = shredkv.StoreIOError("IOError: disk on fire")
    assert str(e) == "IOError: disk on fire" and e.errno is None and e.code == 12


def test_not_found(store: shredkv.Store, ann: shredkv.PersonId) -> None:
    with pytest.raises(shredkv.NotFound):
        store.resolve(("email", "bob@example.org"))
    with pytest.raises(shredkv.NotFound):
        store.get(ann, "orders", b"missing")
    with pytest.raises(shredkv.NotFound):
        store.get_erasure("no-such-request")
    with pytest.raises(shredkv.NotFound):
        store.get_profile(shredkv.PersonId(b"\x01" * 16))


def test_erased(store: shredkv.Store, ann: shredkv.PersonId) -> None:
    store.erase(ann)
    with pytest.raises(shredkv.Erased):
        store.get_profile(ann)
    with pytest.raises(shredkv.Erased):
        store.erase(ann)


def test_already_exists(store: shredkv.Store, ann: shredkv.PersonId) -> None:
    with pytest.raises(shredkv.AlreadyExists):
        store.create_person([("email", "ANN@example.org ")])
    store.erase(ann, request_id="req-1")
    bob = store.create_person([("email", "bob@example.org")])
    with pytest.raises(shredkv.AlreadyExists):
        store.erase(bob, request_id="req-1")


def test_invalid_argument(store: shredkv.Store, ann: shredkv.PersonId) -> None:
    with pytest.raises(shredkv.InvalidArgument):
        store.create_person([("no_such_type", "x")])
    with pytest.raises(shredkv.InvalidArgument):
        store.create_person([("email", "not an email")])
    with pytest.raises(ValueError):  # InvalidArgument is a ValueError
        store.lease(ann, "no_such_purpose")
    with pytest.raises(shredkv.InvalidArgument):
        shredkv.PersonId.from_hex("xyz")
    with pytest.raises(shredkv.InvalidArgument):
        store.append_event(ann, "e", 0, {"a": 1}, analytics_fields=["not_a_property"])


def test_wrong_key(open_store, store_dir: Path) -> None:
    s = open_store(store_dir)
    s.close()
    with pytest.raises(shredkv.WrongKey):
        shredkv.Store.open(store_dir, key=OTHER_KEY)


def test_failed_precondition_second_open(open_store, store_dir: Path) -> None:
    open_store(store_dir)
    with pytest.raises(shredkv.FailedPrecondition):
        open_store(store_dir)


def test_an_all_zero_raw_key_creates_no_store(tmp_path: Path) -> None:
    # Outside audit 37a, F5: bytearray(32) never filled (a failed KMS read)
    # made a store anyone could open with 32 zero bytes.
    with pytest.raises(shredkv.InvalidArgument, match="zero"):
        shredkv.Store.open(tmp_path / "z", key=bytearray(32), create=True)
    with pytest.raises(shredkv.InvalidArgument, match="zero"):
        shredkv.Store.open(tmp_path / "z", key=shredkv.raw_key(bytes(32)), create=True)


def test_open_missing_store(tmp_path: Path) -> None:
    with pytest.raises(shredkv.NotFound):
        shredkv.Store.open(tmp_path / "nothing", key=shredkv.raw_key(bytes(32)))


def test_error_if_exists(open_store, store_dir: Path) -> None:
    open_store(store_dir).close()
    with pytest.raises(shredkv.AlreadyExists):
        open_store(store_dir, error_if_exists=True)


def test_restricted_lease(store: shredkv.Store, ann: shredkv.PersonId) -> None:
    store.restrict(ann, all=True, reason="Art. 18 request")
    with pytest.raises(shredkv.Restricted):
        store.lease(ann, "support")


def test_restricted_without_consent(store: shredkv.Store, ann: shredkv.PersonId) -> None:
    # marketing's basis is consent: no consent, no lease.
    with pytest.raises(shredkv.Restricted):
        store.lease(ann, "marketing")


def test_suppressed(store: shredkv.Store, ann: shredkv.PersonId) -> None:
    store.erase(ann, suppress=True)
    with pytest.raises(shredkv.Suppressed):
        store.create_person([("email", "ann@example.org")])
    with pytest.raises(shredkv.Suppressed):
        store.resolve(("email", "ann@example.org"))
    store.unsuppress(("email", "ann@example.org"))
    store.create_person([("email", "ann@example.org")])
    with pytest.raises(shredkv.NotFound):
        store.unsuppress(("email", "ann@example.org"))


def test_read_only(open_store, store_dir: Path) -> None:
    open_store(store_dir).close()
    ro = open_store(store_dir, create=False, read_only=True)
    with pytest.raises(shredkv.ReadOnly):
        ro.create_person([("email", "x@example.org")])


def test_type_errors(store: shredkv.Store, ann: shredkv.PersonId) -> None:
    with pytest.raises(TypeError):
        store.put(ann, "orders", b"k", "a str value")
    with pytest.raises(TypeError):
        store.put(ann, "orders", "a str key", b"v")
    with pytest.raises(TypeError):
        store.get(ann, "orders", "k")
    with pytest.raises(TypeError):
        store.put(ann, b"bytes collection", b"k", b"v")
    with pytest.raises(TypeError):
        store.get_profile(ann.hex())  # a PersonId, not its hex
    with pytest.raises(TypeError):
        store.resolve("ann@example.org")
    with pytest.raises(TypeError):
        store.create_person(("email", "x@example.org"))  # a list of identifiers
    with pytest.raises(TypeError):
        store.patch_profile(ann, {1: "x"})  # names are str
    with pytest.raises(TypeError):
        store.patch_profile(ann, {"x": [1, 2]})
    with pytest.raises(ValueError):
        store.patch_profile(ann, {"a\0b": 1})
    with pytest.raises(TypeError):
        store.patch_profile(ann, unset="name")  # a list of names
    with pytest.raises(TypeError):
        shredkv.Store.open("/tmp/x", key="not bytes")
    with pytest.raises(TypeError):
        shredkv.Store.open("/tmp/x", key=bytes(32), no_such_option=1)
    with pytest.raises(ValueError):
        shredkv.raw_key(b"short")


def test_closed_store(open_store, store_dir: Path) -> None:
    s = open_store(store_dir)
    p = s.create_person([("email", "ann@example.org")])
    s.close()
    assert s.closed
    s.close()  # idempotent
    with pytest.raises(shredkv.FailedPrecondition):
        s.resolve(("email", "ann@example.org"))
    with pytest.raises(shredkv.FailedPrecondition):
        s.get_profile(p)
    with pytest.raises(shredkv.FailedPrecondition):
        s.scan_events(p)
    with pytest.raises(shredkv.FailedPrecondition):
        with s.batch() as b:
            b.append_event(p, "e", 1)
    # Reopen works once closed.
    s2 = open_store(store_dir, create=False)
    assert s2.resolve(("email", "ann@example.org")) == p


def test_context_manager_closes(store_dir: Path) -> None:
    with shredkv.Store.open(store_dir, key=shredkv.raw_key(bytes(range(32))), create=True) as s:
        s.create_person([("email", "a@example.org")])
    assert s.closed
    with pytest.raises(shredkv.FailedPrecondition):
        s.stats()


def test_error_message_is_freed_and_replaced(store: shredkv.Store) -> None:
    # Many failing calls: each message is freed (no growth), and each
    # exception carries its own message.
    for i in range(200):
        with pytest.raises(shredkv.NotFound) as info:
            store.resolve(("email", f"n{i}@example.org"))
        assert info.value.message


def test_import_error_names_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHREDKV_LIBRARY", raising=False)
    monkeypatch.setattr(_ffi, "SONAME", "libshredkv-nonexistent.so.0")
    with pytest.raises(ImportError) as info:
        _ffi._load()
    assert "SHREDKV_LIBRARY" in str(info.value)
