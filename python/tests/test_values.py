"""Every value type round-trips; PersonId, Timestamp, identifiers."""
from __future__ import annotations

import datetime as dt
import enum
import math
from typing import Any

import pytest

import shredkv
from shredkv import PersonId, Timestamp

from conftest import T0

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

VALUES = {
    "s": "Ann",
    "s_empty": "",
    "s_unicode": "Zoë 🐍 ß",
    "s_nul": "a\0b",
    "b": b"\x00\xff\x10raw",
    "b_empty": b"",
    "t": True,
    "f": False,
    "i": 42,
    "i_neg": -7,
    "i_min": INT64_MIN,
    "i_max": INT64_MAX,
    "d": 19.9,
    "d_neg_zero": -0.0,
    "d_inf": math.inf,
    "ts": Timestamp(T0),
    "ts_neg": Timestamp(-2208988800000),
}


def _same(a, b) -> bool:
    return type(a) is type(b) and (a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)))


def test_profile_round_trip(store: shredkv.Store) -> None:
    p = store.create_person([("email", "v@example.org")], VALUES)
    got = store.get_profile(p)
    assert list(got) == sorted(VALUES)  # name order
    for name, value in VALUES.items():
        assert _same(got[name], value), name
    assert math.copysign(1.0, got["d_neg_zero"]) == -1.0


def test_event_properties_round_trip(store: shredkv.Store) -> None:
    p = store.create_person([("email", "v@example.org")])
    store.append_event(p, "all_types", T0, dict(VALUES, nan=math.nan))
    (event,) = list(store.scan_events(p))
    assert event.name == "all_types" and event.ts_ms == T0 and event.category == "general"
    for name, value in VALUES.items():
        assert _same(event.properties[name], value), name
    assert math.isnan(event.properties["nan"])


def test_bool_is_not_int(store: shredkv.Store) -> None:
    p = store.create_person([("email", "v@example.org")], {"yes": True, "one": 1})
    prof = store.get_profile(p)
    assert prof["yes"] is True
    assert type(prof["one"]) is int and prof["one"] == 1


def test_subclasses_and_datetimes(store: shredkv.Store) -> None:
    class Color(enum.IntEnum):
        RED = 3

    class Tag(str):
        pass

    aware = dt.datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=dt.timezone.utc)
    plus2 = aware.astimezone(dt.timezone(dt.timedelta(hours=2)))
    p = store.create_person([("email", "v@example.org")], {
        "enum": Color.RED, "tag": Tag("x"), "when": aware, "when2": plus2,
        "ba": bytearray(b"ab"), "mv": memoryview(b"cd"), "np_bool": True,
    })
    prof = store.get_profile(p)
    assert prof["enum"] == 3 and type(prof["enum"]) is int
    assert prof["tag"] == "x" and type(prof["tag"]) is str
    assert prof["when"] == Timestamp(T0 + 123)  # floored to the millisecond
    assert prof["when2"] == prof["when"]
    assert prof["when"].to_datetime() == aware.replace(microsecond=123000)
    assert prof["ba"] == b"ab" and prof["mv"] == b"cd"


def test_naive_datetime_refused(store: shredkv.Store) -> None:
    with pytest.raises(ValueError):
        store.create_person([("email", "v@example.org")], {"when": dt.datetime(2023, 1, 1)})


def test_int64_bounds(store: shredkv.Store) -> None:
    p = store.create_person([("email", "v@example.org")])
    for bad in (INT64_MAX + 1, INT64_MIN - 1, 1 << 100):
        with pytest.raises(OverflowError):
            store.patch_profile(p, {"big": bad})
    with pytest.raises(OverflowError):
        Timestamp(1 << 63)
    assert "big" not in store.get_profile(p)


def test_unsupported_types(store: shredkv.Store) -> None:
    p = store.create_person([("email", "v@example.org")])
    for bad in (None, [1], {"a": 1}, 1j, object()):
        with pytest.raises(TypeError):
            store.patch_profile(p, {"x": bad})


def test_invalid_utf8_string_round_trips(store: shredkv.Store) -> None:
    # A STRING holding bytes that are not UTF-8 comes back with surrogate
    # escapes and writes back byte for byte.
    raw = b"caf\xe9"
    text = raw.decode("utf-8", "surrogateescape")
    p = store.create_person([("email", "v@example.org")], {"s": text})
    got = store.get_profile(p)["s"]
    assert got == text and got.encode("utf-8", "surrogateescape") == raw
    doc = store.export_json(p)
    assert b"string_base64" in doc  # the export format's rule for such strings


def test_patch_profile(store: shredkv.Store) -> None:
    p = store.create_person([("email", "v@example.org")], {"a": 1, "b": 2})
    store.patch_profile(p, {"c": "x", "a": 10}, unset=["b"])
    assert store.get_profile(p) == {"a": 10, "c": "x"}
    store.patch_profile(p, unset=("missing",))
    store.patch_profile(p, set={})
    assert store.get_profile(p) == {"a": 10, "c": "x"}


def test_person_id() -> None:
    raw = bytes(range(16))
    p = PersonId(raw)
    assert p.bytes == raw
    assert str(p) == raw.hex() == p.hex()
    assert repr(p) == f"PersonId('{raw.hex()}')"
    q = PersonId.from_hex(raw.hex())
    assert q == p and hash(q) == hash(p) and q is not p
    assert {p: 1}[q] == 1
    assert p != PersonId(bytes(16))
    assert not PersonId(bytes(16)) and p
    assert p != raw  # not equal to its bytes
    with pytest.raises(AttributeError):
        p.x = 1  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        p._b = b"x"  # immutable, even its slots
    with pytest.raises(ValueError):
        PersonId(b"short")
    with pytest.raises(shredkv.InvalidArgument):
        PersonId.from_hex("00" * 15)
    assert sorted([PersonId(b"\x02" * 16), PersonId(b"\x01" * 16)])[0] == PersonId(b"\x01" * 16)
    import pickle
    assert pickle.loads(pickle.dumps(p)) == p


def test_person_ids_from_the_store(store: shredkv.Store) -> None:
    p = store.create_person([("email", "v@example.org")])
    q = store.resolve(("email", "V@Example.org"))
    assert p == q and hash(p) == hash(q) and len(p.bytes) == 16
    assert PersonId.from_hex(str(p)) == p
    assert store.get_person(PersonId.from_hex(str(p))).id == p


def test_timestamp() -> None:
    t = Timestamp(T0)
    assert t.ms == T0 and int(t) == T0 and repr(t) == f"Timestamp({T0})"
    assert t.to_datetime() == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.timezone.utc)
    assert Timestamp.from_datetime(t.to_datetime()) == t
    assert Timestamp(1) < Timestamp(2) and hash(Timestamp(5)) == hash(Timestamp(5))
    assert Timestamp(T0) != T0
    with pytest.raises(TypeError):
        Timestamp(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Timestamp(True)
    with pytest.raises(AttributeError):
        t.ms = 3  # type: ignore[misc]
    assert abs(Timestamp.now().ms - int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)) < 60_000


def test_identifiers(store: shredkv.Store) -> None:
    p = store.create_person([shredkv.Identifier("email", " Ann@Example.ORG "), ("customer_id", b"C-1")])
    info = store.get_person(p)
    assert info.id == p
    assert info.identifiers == (("customer_id", "C-1"), ("email", "ann@example.org"))
    assert all(isinstance(i, shredkv.Identifier) for i in info.identifiers)
    assert len(info.anon_id) == 16 and info.key_epoch >= 1
    assert store.resolve(("customer_id", "C-1")) == p
    store.link_identifier(p, ("phone", "+49 (170) 123"))
    assert store.resolve(("phone", "+49170123")) == p
    store.unlink_identifier(p, ("phone", "+49170123"))
    with pytest.raises(shredkv.NotFound):
        store.resolve(("phone", "+49170123"))


def test_normalize_identifier() -> None:
    assert shredkv.normalize_identifier(("email", "  Ann@Example.ORG ")) == ("email", "ann@example.org")
    assert shredkv.normalize_identifier(("phone", "+49 (170) 1234")) == ("phone", "+491701234")
    assert shredkv.normalize_identifier(
        ("loyalty", " AbC "), identifier_types={"loyalty": shredkv.Normalization.LOWER_TRIM}
    ) == ("loyalty", "abc")
    with pytest.raises(shredkv.InvalidArgument):
        shredkv.normalize_identifier(("loyalty", "x"))


def test_check_new_identifier() -> None:
    shredkv.check_new_identifier(("email", " Ann@Example.ORG "))
    hidden = ("email", "ann\u200b@example.org")  # a zero-width space: normalises, but may not be claimed
    assert shredkv.normalize_identifier(hidden) == ("email", "ann\u200b@example.org")
    with pytest.raises(shredkv.InvalidArgument, match="invisible"):
        shredkv.check_new_identifier(hidden)
    with pytest.raises(shredkv.InvalidArgument, match="control character"):
        shredkv.check_new_identifier(("customer_id", "c-1\x01"))
    with pytest.raises(shredkv.InvalidArgument):
        shredkv.check_new_identifier(("loyalty", "x"))
    shredkv.check_new_identifier(("loyalty", " AbC "),
                                 identifier_types={"loyalty": shredkv.Normalization.LOWER_TRIM})


def test_records_bytes(store: shredkv.Store) -> None:
    p = store.create_person([("email", "v@example.org")])
    store.put(p, "blobs", b"\x00key", b"\x00\xffvalue")
    assert store.get(p, "blobs", b"\x00key") == b"\x00\xffvalue"
    store.put(p, "blobs", b"empty", b"")
    assert store.get(p, "blobs", b"empty") == b""
    store.put(p, "blobs", bytearray(b"ba"), memoryview(b"mv"))
    assert store.get(p, "blobs", b"ba") == b"mv"
    big = bytes(range(256)) * 4096
    store.put(p, "blobs", b"big", big)
    assert store.get(p, "blobs", b"big") == big
    store.delete(p, "blobs", b"big")
    store.delete(p, "blobs", b"big")  # absent: fine
    with pytest.raises(shredkv.NotFound):
        store.get(p, "blobs", b"big")


def test_record_metadata(store: shredkv.Store) -> None:
    p = store.create_person([("email", "v@example.org")])
    rec = shredkv.Record("orders", b"A-1", b"kettle", category="payment",
                         metadata=shredkv.RecordMetadata(purposes=["billing", "support"], origin="signup form",
                                                         shared_with=["acme"], automated_decision=True,
                                                         expires_ms=T0 * 2))
    store.put_record(p, rec)
    assert store.get_record(p, "orders", b"A-1") == rec
    plain = store.get_record(p, "orders", b"A-1")
    store.put(p, "orders", b"A-2", b"mug")
    assert store.get_record(p, "orders", b"A-2") == shredkv.Record("orders", b"A-2", b"mug", "general")
    assert plain.metadata.purposes == ["billing", "support"]


def test_person_id_hex_is_the_librarys() -> None:
    from shredkv import _ffi

    p = PersonId(bytes(range(200, 216)))
    out = _ffi.ffi.new("char[33]")
    _ffi.lib.shredkv_person_id_to_hex(p._c, out)
    assert _ffi.ffi.string(out).decode() == str(p)


def test_resolve_argument_forms(store: shredkv.Store) -> None:
    p = store.create_person([("email", "v@example.org"), ("customer_id", b"\xffraw")])
    assert store.resolve(shredkv.Identifier("email", "v@example.org")) == p
    assert store.resolve(["email", "v@example.org"]) == p
    assert store.resolve(("email", b"v@example.org")) == p
    assert store.resolve(("customer_id", b"\xffraw")) == p
    assert store.resolve(("customer_id", "\udcffraw")) == p  # surrogate escapes are the raw bytes
    with pytest.raises(TypeError):
        store.resolve(("email",))
    with pytest.raises(TypeError):
        store.resolve(("email", 5))
    with pytest.raises(TypeError):
        store.resolve((5, "v@example.org"))


def test_index_types_are_int64(store: shredkv.Store) -> None:
    class Count:
        def __index__(self) -> int:
            return 7

    p = store.create_person([("email", "v@example.org")], {"n": Count()})
    assert store.get_profile(p) == {"n": 7}


def test_bool_parameters_take_only_bool(store: shredkv.Store, open_store: Any, tmp_path: Any) -> None:
    """Outside audit 32a, F5: boolean parameters went by truthiness, so the
    text "false" granted consent and suppress="no" suppressed. Every one
    now takes only a bool (TypeError otherwise) and changes nothing."""
    p = store.create_person([("email", "flag@example.org")])
    q = store.create_person([("email", "flag2@example.org")])
    for bad in ("false", "no", 0, 1, None, 1.0):
        with pytest.raises(TypeError, match="granted must be bool"):
            store.set_consent(p, "marketing", bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="suppress must be bool"):
            store.erase(q, suppress=bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="suppress must be bool"):
            store.erase_by_identifier(("email", "flag2@example.org"), suppress=bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="all must be bool"):
            store.restrict(p, all=bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="all must be bool"):
            store.unrestrict(p, all=bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="granted must be bool"):
            store.people_with_consent("marketing", bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="ndjson must be bool"):
            store.export_json(p, ndjson=bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="ndjson must be bool"):
            store.import_person(b"{}", ndjson=bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="interactive must be bool"):
            shredkv.passphrase("secret", interactive=bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="automated_decision must be bool"):
            store.put_record(p, shredkv.Record("docs", b"k", b"v", metadata=shredkv.RecordMetadata(
                automated_decision=bad)))  # type: ignore[arg-type]
        batch = store.batch()
        with pytest.raises(TypeError, match="all must be bool"):
            batch.record_consent(p, shredkv.ConsentAction.RESTRICT, all=bad)  # type: ignore[arg-type]
        for option in ("create", "read_only", "error_if_exists", "audit_processing_reads"):
            if bad is None:
                continue  # an option None: the library's default
            with pytest.raises(TypeError, match=f"{option} must be bool"):
                open_store(tmp_path / "other", **{option: bad})
    # Nothing was recorded, erased or suppressed.
    assert store.get_consent(p) == {}
    assert store.resolve(("email", "flag2@example.org")) == q
    assert not store.get_restriction(p).all
    with pytest.raises(shredkv.NotFound):
        store.get(p, "docs", b"k")
    # A real bool works.
    store.set_consent(p, "marketing", False)
    assert store.get_consent(p) == {"marketing": False}
    assert not store.erase(q, suppress=False).suppressed


class _Plan(str, enum.Enum):
    PREMIUM = "premium"


class _Masked(str):
    """A "don't log personal data" wrapper: its __str__ hides the value."""

    def __str__(self) -> str:
        return "***"

    __repr__ = __str__


class _Cents(int):
    def __int__(self) -> int:
        return 0

    def __index__(self) -> int:
        return 0


class _Rounded(float):
    def __float__(self) -> float:
        return 0.0


class _Bytes(bytes):
    def __bytes__(self) -> bytes:
        return b"***"


def test_subclasses_are_stored_as_their_own_value_not_their_dunders(store: shredkv.Store) -> None:
    # Python audit 37a, F4: str(v) / int(v) called a subclass's __str__ /
    # __int__: a (str, Enum) member was stored as 'Plan.PREMIUM', a redacting
    # str subclass as '***' (as a value, an identifier, a collection).
    iban = _Masked("DE89370400440532013000")
    p = store.create_person([("email", _Masked("ann@example.org"))],
                            {"plan": _Plan.PREMIUM, "iban": iban, "cents": _Cents(1999),
                             "rate": _Rounded(0.25), "raw": _Bytes(b"\x01\x02")})
    prof = store.get_profile(p)
    assert prof == {"plan": "premium", "iban": "DE89370400440532013000", "cents": 1999, "rate": 0.25,
                    "raw": b"\x01\x02"}
    assert type(prof["plan"]) is str and type(prof["cents"]) is int
    assert store.resolve(("email", "ann@example.org")) == p
    assert store.resolve(("email", _Masked("ann@example.org"))) == p
    store.put(p, _Masked("orders"), b"k", b"v")
    assert [r.collection for r in store.scan_records(p, "orders")] == ["orders"]
    store.append_event(p, "purchase", _Cents(T0), {"amount": _Cents(5)})
    with store.batch() as b:
        b.append_event(p, "refund", _Cents(T0 + 1))
    assert [(e.ts_ms, e.properties) for e in store.scan_events(p)] == [(T0, {"amount": 5}), (T0 + 1, {})]
    assert Timestamp(_Cents(T0)).ms == T0
    assert shredkv.passphrase(_Masked("a long passphrase")) is not None


def test_person_id_takes_only_bytes_like(store: shredkv.Store) -> None:
    # Python audit 37a, F6: bytes(n) made n zero bytes: PersonId(16) was the
    # "no person" ID and PersonId(4_000_000_000) allocated 4 GB first.
    for bad in (16, 4_000_000_000, -1, True, "00" * 16, [0] * 16, iter([0] * 16), None, 1.0):
        with pytest.raises(TypeError):
            PersonId(bad)  # type: ignore[arg-type]
    raw = bytes(range(16))
    assert PersonId(bytearray(raw)) == PersonId(memoryview(raw)) == PersonId(raw)
    with pytest.raises(ValueError):
        PersonId(memoryview(bytes(range(32))).cast("Q"))  # 4 items, 32 bytes


SURROGATE_TEXT = "HIV positive, Dr. Meier \ud83d"  # a cut-off emoji from json.loads


def test_text_that_is_not_utf8_encodable_names_no_value(store: shredkv.Store) -> None:
    # Python audit 37a, F8: UnicodeEncodeError carried the whole value in
    # its args and repr(). Now a ValueError naming what and the position.
    p = store.create_person([("email", "v@example.org")])
    calls = {
        "value": lambda: store.patch_profile(p, {"note": SURROGATE_TEXT}),
        "subclass value": lambda: store.patch_profile(p, {"note": _Masked(SURROGATE_TEXT)}),
        "event property": lambda: store.append_event(p, "e", T0, {"note": SURROGATE_TEXT}),
        "batch property": lambda: store.batch().append_event(p, "e", T0, {"note": SURROGATE_TEXT}),
        "identifier": lambda: store.create_person([("email", SURROGATE_TEXT)]),
        "resolve": lambda: store.resolve(("email", SURROGATE_TEXT)),
        "identifier struct": lambda: store.link_identifier(p, ("email", SURROGATE_TEXT)),
        "collection": lambda: store.put(p, SURROGATE_TEXT, b"k", b"v"),
        "request id": lambda: store.erase(p, request_id=SURROGATE_TEXT),
        "name": lambda: store.patch_profile(p, {SURROGATE_TEXT: 1}),
        "passphrase": lambda: shredkv.passphrase(SURROGATE_TEXT),
    }
    for label, call in calls.items():
        with pytest.raises(ValueError) as info:
            call()
        e = info.value
        assert not isinstance(e, UnicodeError), label
        assert "HIV" not in repr(e) and "HIV" not in str(e) and "Meier" not in repr(e.args), label
        assert "position 24" in str(e), (label, str(e))
        assert e.__cause__ is None and e.__suppress_context__, label
    assert store.get_profile(p) == {}


def test_key_callback_checks_the_byte_size(tmp_path) -> None:
    # Python audit 37a, F9: len(key) == 32 was checked, not the bytes: a
    # memoryview of 32 uint64 (256 bytes) gave its first 32 bytes as the key.
    wide = memoryview(bytes(range(1, 33)) * 8).cast("Q")
    assert len(wide) == 32 and wide.nbytes == 256

    class Liar(bytes):
        def __len__(self) -> int:
            return 32

    for i, bad in enumerate((wide, Liar(b"abc"))):
        with pytest.raises(shredkv.StoreIOError):
            shredkv.Store.open(tmp_path / f"bad{i}", key=shredkv.key_callback(lambda salt, k=bad: k), create=True)
    narrow = memoryview(bytes(range(1, 33))).cast("I")  # 8 items, 32 bytes: fine
    with shredkv.Store.open(tmp_path / "store", key=shredkv.key_callback(lambda salt: narrow), create=True,
                            durability=shredkv.Durability.NO_SYNC):
        pass
    with shredkv.Store.open(tmp_path / "store", key=bytes(range(1, 33))):
        pass
