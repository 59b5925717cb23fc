"""Scans are Python iterators that destroy the C iterator when done, closed
or collected, and raise the scan's error."""
from __future__ import annotations

import gc
import weakref

import pytest

import shredkv
from shredkv import ExportKind

from conftest import T0


def _events(store: shredkv.Store, p: shredkv.PersonId, n: int) -> None:
    with store.batch() as b:
        for i in range(n):
            b.append_event(p, "view", T0 + (i % 5) * 1000, {"page": f"/p/{i}", "i": i}, analytics_fields=["page"])


def test_scan_events_order_and_range(store: shredkv.Store, ann: shredkv.PersonId) -> None:
    _events(store, ann, 20)
    events = list(store.scan_events(ann))
    assert len(events) == 20
    keys = [(e.ts_ms, e.seq) for e in events]
    assert keys == sorted(keys) and len({e.seq for e in events}) == 20
    window = list(store.scan_events(ann, T0 + 1000, T0 + 3000))
    assert {e.ts_ms for e in window} == {T0 + 1000, T0 + 2000} and len(window) == 8
    assert list(store.scan_events(ann, start=T0 + 10_000)) == []
    assert len(list(store.scan_events(ann, end=shredkv.Timestamp(T0 + 1)))) == 4


def test_many_items_across_batches(open_store, ann_free=None) -> None:
    store = open_store(iterator_batch_size=7)
    p = store.create_person([("email", "many@example.org")])
    _events(store, p, 100)
    assert [e.properties["i"] for e in store.scan_events(p)] == sorted(
        range(100), key=lambda i: (i % 5, i))


def test_scan_records_prefix(store: shredkv.Store, ann: shredkv.PersonId) -> None:
    for k in (b"2024-03/A-1", b"2024-03/A-2", b"2024-04/B-1"):
        store.put(ann, "orders", k, b"v" + k)
    store.put(ann, "other", b"2024-03/X", b"x")
    got = list(store.scan_records(ann, "orders", b"2024-03/"))
    assert [r.key for r in got] == [b"2024-03/A-1", b"2024-03/A-2"]
    assert got[0].value == b"v2024-03/A-1" and got[0].collection == "orders"
    assert len(list(store.scan_records(ann, "orders"))) == 3


def test_scan_error_raised_from_iteration(store: shredkv.Store, ann: shredkv.PersonId) -> None:
    ghost = shredkv.PersonId(b"\x07" * 16)
    it = store.scan_events(ghost)
    with pytest.raises(shredkv.NotFound):
        next(it)
    with pytest.raises(StopIteration):  # ended: the C iterator is gone
        next(it)
    store.erase(ann)
    with pytest.raises(shredkv.Erased):
        list(store.scan_records(ann, "orders"))


def test_early_break_and_gc_destroy(store: shredkv.Store, ann: shredkv.PersonId) -> None:
    _events(store, ann, 10)
    it = store.scan_events(ann)
    first = next(it)
    assert first.properties["i"] in range(10)
    ref = weakref.ref(it)
    assert id(it._cell) in store._iterators
    del it
    gc.collect()
    assert ref() is None
    assert not store._iterators


def test_close_and_context_manager(store: shredkv.Store, ann: shredkv.PersonId) -> None:
    _events(store, ann, 3)
    with store.scan_events(ann) as it:
        next(it)
    assert it._h is None
    with pytest.raises(StopIteration):
        next(it)
    it.close()  # idempotent
    it2 = store.scan_events(ann)
    it2.close()
    assert list(it2) == []


def test_store_close_with_live_iterators_and_leases(open_store, store_dir) -> None:
    s = open_store(store_dir)
    p = s.create_person([("email", "a@example.org")])
    _events(s, p, 5)
    it = s.scan_events(p)
    next(it)
    lease = s.lease(p, "support")
    lit = lease.scan_events()
    next(lit)
    s.close()  # destroys the iterators, releases the lease, then closes
    assert lease.released
    with pytest.raises(shredkv.FailedPrecondition):
        next(it)
    with pytest.raises(shredkv.FailedPrecondition):
        next(lit)
    with pytest.raises(shredkv.FailedPrecondition):
        lease.get_profile()
    lease.release()  # idempotent


def test_iterator_keeps_store_alive(open_store) -> None:
    s = open_store()
    p = s.create_person([("email", "a@example.org")])
    _events(s, p, 3)
    it = s.scan_events(p)
    ref = weakref.ref(s)
    del s
    gc.collect()
    assert ref() is not None  # the iterator holds its store
    assert len(list(it)) == 3


def test_export_items(store: shredkv.Store, ann: shredkv.PersonId) -> None:
    _events(store, ann, 2)
    store.put(ann, "orders", b"A-1", b"kettle")
    store.set_consent(ann, "marketing", True, source="web-banner")
    items = list(store.export(ann))
    kinds = [i.kind for i in items]
    assert kinds == sorted(kinds)  # the documented order
    assert kinds[0] == ExportKind.PERSON and items[0].value.id == ann
    assert [i.value for i in items if i.kind == ExportKind.IDENTIFIER] == [
        ("email", "ann@example.org"), ("phone", "+491701234567")]
    (profile,) = [i.value for i in items if i.kind == ExportKind.PROFILE]
    assert profile == {"name": "Ann", "newsletter": True}
    (restriction,) = [i.value for i in items if i.kind == ExportKind.RESTRICTION]
    assert restriction.all is False and restriction.updated_ms == 0
    (consent,) = [i.value for i in items if i.kind == ExportKind.CONSENT]
    assert consent.action == shredkv.ConsentAction.GRANT and consent.source == "web-banner"
    assert len([i for i in items if i.kind == ExportKind.EVENT]) == 2
    (record,) = [i.value for i in items if i.kind == ExportKind.RECORD]
    assert record.key == b"A-1" and record.value == b"kettle"
    analytics = [i.value for i in items if i.kind == ExportKind.ANALYTICS]
    assert len(analytics) == 2 and set(analytics[0].fields) == {"page"}
    assert all(isinstance(i.value, shredkv.Notice) for i in items if i.kind == ExportKind.NOTICE)


def test_scan_analytics(store: shredkv.Store, ann: shredkv.PersonId) -> None:
    _events(store, ann, 6)
    rows = list(store.scan_analytics())
    assert len(rows) == 6
    assert all(r.name == "view" and set(r.fields) == {"page"} and len(r.anon_id) == 16 for r in rows)
    assert all(r.ts_ms <= T0 + 4000 for r in rows)
    assert list(store.scan_analytics(name="other")) == []
    assert len(list(store.scan_analytics(T0 - 3_600_000, T0 + 3_600_000, name="view"))) == 6


def test_find_records(store: shredkv.Store, ann: shredkv.PersonId) -> None:
    bob = store.create_person([("email", "bob@example.org")])
    md = shredkv.RecordMetadata(purposes=["billing"], shared_with=["acme"], expires_ms=T0 * 2)
    store.put_record(ann, shredkv.Record("orders", b"A", b"1", metadata=md))
    store.put_record(bob, shredkv.Record("orders", b"B", b"2", metadata=md))
    store.put(bob, "orders", b"C", b"3")
    found = list(store.find_records(purpose="billing"))
    assert {(f.person, f.record.key) for f in found} == {(ann, b"A"), (bob, b"B")}
    assert len(list(store.find_records(recipient="acme"))) == 2
    assert len(list(store.find_records(expires_before=T0 * 3))) == 2
    assert list(store.find_records(recipient="nobody")) == []
    with pytest.raises(TypeError):
        store.find_records()
    with pytest.raises(TypeError):
        store.find_records(purpose="billing", recipient="acme")


def test_people_with_consent(store: shredkv.Store, ann: shredkv.PersonId) -> None:
    bob = store.create_person([("email", "bob@example.org")])
    store.set_consent([ann, bob], "marketing", True)
    store.set_consent(bob, "marketing", False, source="objection")
    assert list(store.people_with_consent("marketing")) == [ann]
    assert list(store.people_with_consent("marketing", granted=False)) == [bob]
    with pytest.raises(shredkv.InvalidArgument):
        list(store.people_with_consent("no_such_purpose"))


def test_lease_reads(store: shredkv.Store, ann: shredkv.PersonId) -> None:
    store.put(ann, "orders", b"A-1", b"kettle")
    store.put_record(ann, shredkv.Record("places", b"home", b"Berlin", category="location"))
    store.append_event(ann, "visit", T0, {"where": "Berlin"}, category="location")
    store.append_event(ann, "login", T0 + 1)
    store.restrict(ann, categories=["location"])
    with store.lease(ann, "support") as lease:
        assert lease.person == ann and lease.purpose == "support"
        assert lease.get_profile() == {"name": "Ann", "newsletter": True}
        assert [e.name for e in lease.scan_events()] == ["login"]
        assert lease.get("orders", b"A-1") == b"kettle"
        with pytest.raises(shredkv.Restricted):
            lease.get("places", b"home")
        assert [r.key for r in lease.scan_records("places")] == []
        assert [r.key for r in lease.scan_records("orders", b"A")] == [b"A-1"]
        it = lease.scan_events()
    assert lease.released
    assert it._h is None  # released with its lease
    with pytest.raises(shredkv.FailedPrecondition):
        lease.get_profile()


def test_no_item_after_an_erasure_that_returned(store: shredkv.Store) -> None:
    # Stop 26's audit (F3): a scan or export started before erase() kept
    # handing out the rest of its batch after erase() returned.
    p = store.create_person([("email", "midscan@example.org")], {"name": "Mid"})
    with store.batch() as b:
        for i in range(20):
            b.put(p, "notes", b"k%02d" % i, b"SECRET %d" % i)
    records = iter(store.scan_records(p, "notes"))
    assert next(records).value == b"SECRET 0"
    exported = iter(store.export(p))
    assert next(exported).kind == ExportKind.PERSON
    store.erase(p)
    with pytest.raises(shredkv.Erased):
        next(records)
    with pytest.raises(shredkv.Erased):
        next(exported)
