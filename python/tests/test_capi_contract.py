"""Direct probes of c.h contracts the Pythonic layer relies on (or hides):
NULL handling, "absent" returns, NUL-terminated buffers, the write
callback's stop code, borrowed accessors of the wrong kind."""
from __future__ import annotations

import shredkv
from shredkv import _ffi

from conftest import T0

ffi, lib = _ffi.ffi, _ffi.lib


def test_null_and_absent_returns() -> None:
    lib.shredkv_free(ffi.NULL)  # no-op
    err = ffi.new("char**")
    assert lib.shredkv_close(ffi.NULL, err) == 0 and err[0] == ffi.NULL  # NULL store: no-op
    assert lib.shredkv_key_provider_raw(b"short", 5) == ffi.NULL
    assert ffi.string(lib.shredkv_code_name(-1)) == b"Unknown"
    for fn in (lib.shredkv_analytics_on_erase_name, lib.shredkv_erasure_level_name,
               lib.shredkv_notice_kind_name, lib.shredkv_audit_action_name, lib.shredkv_maintenance_job_name):
        assert ffi.string(fn(99)) == b"unknown"
    assert ffi.string(lib.shredkv_erasure_level_name(3)) == b"purged"


def test_attrs_accessors() -> None:
    a = lib.shredkv_attrs_create()
    try:
        lib.shredkv_attrs_set_string(a, b"s", b"x\0y", 3)
        lib.shredkv_attrs_set_int64(a, b"i", -5)
        lib.shredkv_attrs_set_bool(a, b"b", 7)  # anything nonzero is true
        assert lib.shredkv_attrs_count(a) == 3
        assert lib.shredkv_attrs_find(a, b"missing") == -1
        i = lib.shredkv_attrs_find(a, b"s")
        n = ffi.new("size_t*")
        p = lib.shredkv_attrs_data(a, i, n)
        assert ffi.unpack(p, n[0]) == b"x\0y"
        # A typed getter of another type: 0 / NULL and length 0.
        assert lib.shredkv_attrs_int64(a, i) == 0 and lib.shredkv_attrs_double(a, i) == 0.0
        j = lib.shredkv_attrs_find(a, b"i")
        assert lib.shredkv_attrs_data(a, j, n) == ffi.NULL and n[0] == 0
        assert lib.shredkv_attrs_int64(a, lib.shredkv_attrs_find(a, b"b")) == 1
        names = [ffi.string(lib.shredkv_attrs_name(a, k)) for k in range(3)]
        assert names == sorted(names)  # name order
        assert lib.shredkv_attrs_remove(a, b"i") == 1 and lib.shredkv_attrs_remove(a, b"i") == 0
        lib.shredkv_attrs_clear(a)
        assert lib.shredkv_attrs_count(a) == 0
    finally:
        lib.shredkv_attrs_destroy(a)


def test_malloced_buffers_are_nul_terminated(store: shredkv.Store) -> None:
    p = store.create_person([("email", "a@example.org")])
    store.put(p, "c", b"k", b"abc")
    vp = ffi.new("char**")
    n = ffi.new("size_t*")
    err = ffi.new("char**")
    assert lib.shredkv_get(store._h, p._c, b"c", 1, b"k", 1, vp, n, err) == 0
    try:
        assert n[0] == 3 and vp[0][3] == b"\0"
    finally:
        lib.shredkv_free(vp[0])


def test_errptr_replaced_not_leaked(store: shredkv.Store) -> None:
    # A message already in *errptr is freed and replaced by the next failure.
    err = ffi.new("char**")
    ident = ffi.new("shredkv_identifier_t*")
    t = ffi.new("char[]", b"email")
    v = ffi.new("char[]", b"x@example.org")
    ident.type, ident.value, ident.value_len = t, v, 13
    out = ffi.new("shredkv_person_id_t*")
    assert lib.shredkv_resolve(store._h, ident, out, err) == 1
    first = err[0]
    assert first != ffi.NULL
    assert lib.shredkv_resolve(store._h, ident, out, err) == 1
    assert err[0] != ffi.NULL and ffi.string(err[0]).startswith(b"NotFound")
    lib.shredkv_free(err[0])


def test_write_callback_stop_is_io_error(store: shredkv.Store) -> None:
    p = store.create_person([("email", "a@example.org")])

    @ffi.callback("int(void*, const char*, size_t)")
    def stop(ctx, data, n):
        return 1

    err = ffi.new("char**")
    rc = lib.shredkv_export_person(store._h, p._c, 0, stop, ffi.NULL, err)
    try:
        assert rc == shredkv.StoreIOError.code
    finally:
        lib.shredkv_free(err[0])


def test_accessors_of_the_wrong_kind(store: shredkv.Store) -> None:
    p = store.create_person([("email", "a@example.org")])
    store.append_event(p, "e", T0)
    it = lib.shredkv_scan_events(store._h, p._c, -(1 << 63), (1 << 63) - 1)
    try:
        assert lib.shredkv_iter_valid(it)
        assert lib.shredkv_iter_event(it) != ffi.NULL
        assert lib.shredkv_iter_record(it) == ffi.NULL
        assert lib.shredkv_iter_export_item(it) == ffi.NULL
        out = ffi.new("shredkv_person_id_t*")
        assert lib.shredkv_iter_person(it, out) == 0
    finally:
        lib.shredkv_iter_destroy(it)
    it = lib.shredkv_export(store._h, p._c)
    try:
        item = lib.shredkv_iter_export_item(it)
        assert lib.shredkv_export_item_kind(item) == 0
        assert lib.shredkv_export_item_person(item) != ffi.NULL
        assert lib.shredkv_export_item_event(item) == ffi.NULL
    finally:
        lib.shredkv_iter_destroy(it)


def test_stats_and_report_lookups(store: shredkv.Store) -> None:
    out = ffi.new("shredkv_stats_t**")
    err = ffi.new("char**")
    assert lib.shredkv_get_stats(store._h, out, err) == 0
    v = ffi.new("uint64_t*")
    try:
        assert lib.shredkv_stats_get(out[0], b"people", v) == 0
        assert lib.shredkv_stats_get(out[0], b"no_such_field", v) == shredkv.NotFound.code
    finally:
        lib.shredkv_stats_destroy(out[0])
    rep = ffi.new("shredkv_verify_report_t**")
    assert lib.shredkv_verify(store._h, rep, err) == 0
    try:
        assert lib.shredkv_verify_report_get(rep[0], b"problem_count", v) == 0 and v[0] == 0
        assert lib.shredkv_verify_report_get(rep[0], b"nope", v) == shredkv.NotFound.code
    finally:
        lib.shredkv_verify_report_destroy(rep[0])
