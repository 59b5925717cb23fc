"""WriteBatch: commit on a clean exit, nothing on an exception, atomic."""
from __future__ import annotations

import pytest

import shredkv

from conftest import T0


def test_commit_on_exit(store: shredkv.Store) -> None:
    with store.batch() as b:
        p = b.create_person([("email", "a@example.org")], {"name": "A"})
        for i in range(1000):
            b.append_event(p, "purchase", T0 + i, {"amount": 9.5, "currency": "EUR", "sku": f"S-{i}"},
                           analytics_fields=("amount", "currency"))
        b.put(p, "orders", b"A-1", b"kettle")
        assert len(b) == 1002
    assert len(b) == 0  # committed and cleared
    assert store.resolve(("email", "a@example.org")) == p
    events = list(store.scan_events(p))
    assert len(events) == 1000
    assert events[0].properties == {"amount": 9.5, "currency": "EUR", "sku": "S-0"}
    assert events[999].properties["sku"] == "S-999"
    assert store.get(p, "orders", b"A-1") == b"kettle"
    rows = list(store.scan_analytics())
    assert len(rows) == 1000 and set(rows[0].fields) == {"amount", "currency"}


def test_nothing_on_exception(store: shredkv.Store) -> None:
    with pytest.raises(RuntimeError):
        with store.batch() as b:
            b.create_person([("email", "a@example.org")])
            raise RuntimeError("boom")
    with pytest.raises(shredkv.NotFound):
        store.resolve(("email", "a@example.org"))
    assert store.stats()["people"] == 0


def test_failed_write_is_atomic(store: shredkv.Store) -> None:
    taken = store.create_person([("email", "taken@example.org")])
    with pytest.raises(shredkv.AlreadyExists) as info:
        with store.batch() as b:
            b.create_person([("email", "new@example.org")])
            b.put(taken, "orders", b"k", b"v")
            b.create_person([("email", "taken@example.org")])
    assert info.value.message  # names the failing operation
    with pytest.raises(shredkv.NotFound):
        store.resolve(("email", "new@example.org"))
    with pytest.raises(shredkv.NotFound):
        store.get(taken, "orders", b"k")


def test_standalone_batch_and_reuse(store: shredkv.Store) -> None:
    b = shredkv.WriteBatch()
    p = b.create_person([("email", "a@example.org")])
    b.patch_profile(p, {"x": 1})
    store.write(b)
    assert store.get_profile(p) == {"x": 1}
    # write() leaves the batch as it is; clear() to reuse it.
    assert len(b) == 2
    b.clear()
    b.patch_profile(p, {"y": 2}, unset=["x"])
    b.link_identifier(p, ("customer_id", "C-9"))
    b.put_record(p, shredkv.Record("docs", b"d", b"v", metadata=shredkv.RecordMetadata(origin="upload")))
    b.delete(p, "docs", b"nothing")
    store.write(b)
    assert store.get_profile(p) == {"y": 2}
    assert store.resolve(("customer_id", "C-9")) == p
    assert store.get_record(p, "docs", b"d").metadata.origin == "upload"
    b.clear()
    b.unlink_identifier(p, ("customer_id", "C-9"))
    store.write(b)
    with pytest.raises(shredkv.NotFound):
        store.resolve(("customer_id", "C-9"))
    with pytest.raises(TypeError):
        b.commit()  # no store bound
    b.destroy()
    with pytest.raises(shredkv.FailedPrecondition):
        b.append_event(p, "e", 0)


def test_commit_explicitly(store: shredkv.Store) -> None:
    b = store.batch()
    p = b.create_person([("email", "a@example.org")])
    b.commit()
    assert len(b) == 0
    assert store.resolve(("email", "a@example.org")) == p


def test_batch_events_options(store: shredkv.Store) -> None:
    p = store.create_person([("email", "a@example.org")])
    with store.batch() as b:
        b.append_event(p, "visit", shredkv.Timestamp(T0), {"where": "Berlin"}, category="location")
        b.append_event(p, "login", T0 + 1)  # no properties
        b.append_event(p, "login", T0 + 2, {})
        b.append_event(p, "buy", T0 + 3, {"a": 1, "b": 2}, analytics_fields=["a"])
        b.append_event(p, "buy", T0 + 4, {"a": 1, "b": 2}, analytics_fields=["a", "b"])
    events = list(store.scan_events(p))
    assert [e.category for e in events] == ["location", "general", "general", "general", "general"]
    assert [e.properties for e in events[1:3]] == [{}, {}]
    fields = sorted(len(r.fields) for r in store.scan_analytics(name="buy"))
    assert fields == [1, 2]


def test_batch_type_errors(store: shredkv.Store) -> None:
    p = store.create_person([("email", "a@example.org")])
    b = store.batch()
    with pytest.raises(TypeError):
        b.put(p, "c", b"k", "str value")
    with pytest.raises(TypeError):
        b.append_event("not a person", "e", 0)
    with pytest.raises(TypeError):
        b.append_event(p, b"bytes name", 0)
    with pytest.raises(TypeError):
        b.append_event(p, "e", 1.5)
    with pytest.raises(OverflowError):
        b.append_event(p, "e", 0, {"big": 1 << 64})
    b.clear()


def test_record_consent_and_import(store: shredkv.Store) -> None:
    with store.batch() as b:
        p = b.import_person([("email", "imported@example.org")], {"name": "I"}, T0)
        b.import_event(p, "old", T0 + 5, {"k": "v"})
        b.record_consent(p, shredkv.ConsentAction.GRANT, "marketing", time=T0 + 10, source="import")
        b.record_consent(p, shredkv.ConsentAction.RESTRICT, all=False, categories=["location"],
                         reason="asked", time=T0 + 11)
    assert store.get_person(p).created_ms == T0
    assert store.get_consent(p) == {"marketing": True}
    history = store.get_consent_history(p)
    assert [h.action for h in history] == [shredkv.ConsentAction.GRANT, shredkv.ConsentAction.RESTRICT]
    assert history[1].categories == ("location",) and history[1].reason == "asked"
    assert store.get_restriction(p).categories == ("location",)
    assert [e.name for e in store.scan_events(p)] == ["old"]
    kinds = [n.kind for n in store.read_feed()]
    assert shredkv.NoticeKind.IMPORT in kinds


def test_rectify_in_batch(store: shredkv.Store) -> None:
    p = store.create_person([("email", "a@example.org")], {"city": "Bonn"})
    with store.batch() as b:
        b.rectify(p, shredkv.Rectification().set_profile({"city": "Berlin"}))
    assert store.get_profile(p) == {"city": "Berlin"}


def test_append_events_json(store: shredkv.Store) -> None:
    import json

    p = store.create_person([("email", "a@example.org")])
    events = [{"person": str(p), "name": "page_view", "ts": T0 + i,
               "properties": {"url": f"/p/{i}", "n": i, "score": 0.5, "ok": True,
                              "when": {"timestamp": T0}, "raw": {"bytes": "AP8="}},
               "analytics_fields": ["n"]} for i in range(3)]
    with store.batch() as b:
        b.append_events_json(json.dumps(events).encode())
        assert len(b) == 3
    got = list(store.scan_events(p))
    assert [e.properties["url"] for e in got] == ["/p/0", "/p/1", "/p/2"]
    assert got[0].properties["when"] == shredkv.Timestamp(T0) and got[0].properties["raw"] == b"\x00\xff"
    assert got[0].properties["ok"] is True and got[0].properties["n"] == 0
    b = store.batch()
    with pytest.raises(shredkv.InvalidArgument):
        b.append_events_json(b'[{"person": "zz", "name": "x", "ts": 1}]')
    assert len(b) == 0  # all or nothing
    with pytest.raises(TypeError):
        b.append_events_json("[]")  # bytes, not str


def test_failed_fill_does_not_leak_into_the_next_event(store: shredkv.Store) -> None:
    p = store.create_person([("email", "a@example.org")])
    with store.batch() as b:
        with pytest.raises(OverflowError):
            b.append_event(p, "e", T0, {"a": 1, "big": 1 << 64})
        b.append_event(p, "e", T0 + 1, {"b": 2})
        assert len(b) == 1
    assert [e.properties for e in store.scan_events(p)] == [{"b": 2}]


def test_progress_commits_with_the_batch(store: shredkv.Store) -> None:
    with pytest.raises(shredkv.NotFound):
        store.read_progress("events.kafka:3")
    with store.batch() as b:
        p = b.create_person([("email", "a@example.org")])
        b.set_progress("events.kafka:3", 1041)
    assert store.read_progress("events.kafka:3") == 1041
    # A failed batch commits neither its operations nor its position.
    with pytest.raises(shredkv.AlreadyExists):
        with store.batch() as b:
            b.create_person([("email", "a@example.org")])
            b.set_progress("events.kafka:3", 2000)
    assert store.read_progress("events.kafka:3") == 1041
    # A position alone commits; the largest position round-trips.
    with store.batch() as b:
        b.set_progress("events.kafka:3", (1 << 64) - 1)
    assert store.read_progress("events.kafka:3") == (1 << 64) - 1
    # A name that could hold an identifier is refused.
    with pytest.raises(shredkv.InvalidArgument):
        with store.batch() as b:
            b.set_progress("a@example.org", 1)
    with pytest.raises(ValueError):
        shredkv.WriteBatch().set_progress("n", -1)
    assert store.resolve(("email", "a@example.org")) == p
