"""Reading the library's result handles into Python values, and building
records and rectifications for it."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ._ffi import ffi, lib
from ._types import (
    AnalyticsOnErase, AnalyticsRow, AuditAction, BackupInfo, ConsentAction, ConsentRecord,
    ErasureLevel, ErasureReceipt, ExportItem, ExportKind, Identifier, Notice, NoticeKind,
    PersonInfo, Record, RecordMetadata, RestrictionState, Retention, StoredEvent, _PID_P,
    _pid_from_c,
)
from ._values import (
    NULL, decode, decode_n, encode_bytes, encode_name, encode_text, fill_attrs, flag, identifier_struct,
    name_array, read_attrs, unset_array,
)

_new = ffi.new
_unpack = ffi.unpack
_SIZE_P = ffi.typeof("size_t*")
_CHARPP = ffi.typeof("char**")
_CCHARPP = ffi.typeof("const char**")
_I64_P = ffi.typeof("int64_t*")
_INT_P = ffi.typeof("int*")
_U8_16 = ffi.typeof("uint8_t[16]")


def _bytes_n(p: Any, n: int) -> bytes:
    return _unpack(p, n) if n else b""


def _pid_of(getter: Any, handle: Any) -> Any:
    out = _new(_PID_P)
    getter(handle, out)
    return _pid_from_c(out)


# ---- events, records, analytics -------------------------------------------------------

_event_name = lib.shredkv_event_name
_event_ts = lib.shredkv_event_ts_ms
_event_seq = lib.shredkv_event_seq
_event_category = lib.shredkv_event_category
_event_properties = lib.shredkv_event_properties


def read_event(e: Any) -> StoredEvent:
    return StoredEvent(
        decode(_event_name(e)), _event_ts(e), _event_seq(e), read_attrs(_event_properties(e)),
        decode(_event_category(e)),
    )


def read_record(r: Any) -> Record:
    lp = _new(_SIZE_P)
    p = lib.shredkv_record_collection(r, lp)
    collection = decode_n(p, lp[0])
    p = lib.shredkv_record_key(r, lp)
    key = _bytes_n(p, lp[0])
    p = lib.shredkv_record_value(r, lp)
    value = _bytes_n(p, lp[0])
    category = decode(lib.shredkv_record_category(r))
    p = lib.shredkv_record_origin(r, lp)
    origin = decode_n(p, lp[0])
    meta = RecordMetadata(
        purposes=[decode(lib.shredkv_record_purpose(r, i)) for i in range(lib.shredkv_record_purpose_count(r))],
        origin=origin,
        shared_with=[decode(lib.shredkv_record_shared_with(r, i))
                     for i in range(lib.shredkv_record_shared_with_count(r))],
        automated_decision=bool(lib.shredkv_record_automated_decision(r)),
        expires_ms=lib.shredkv_record_expires_ms(r),
    )
    return Record(collection, key, value, category, meta)


def build_record(record: Record) -> Any:
    """An owned shredkv_record_t* (gc'd; release early with ffi.release)."""
    if not isinstance(record, Record):
        raise TypeError(f"expected a shredkv.Record, not {type(record).__name__}")
    coll = encode_text(record.collection, "collection")
    key = encode_bytes(record.key, "key")
    value = encode_bytes(record.value, "value")
    r = ffi.gc(lib.shredkv_record_create(coll, len(coll), key, len(key), value, len(value)),
               lib.shredkv_record_destroy)
    if record.category:
        lib.shredkv_record_set_category(r, encode_name(record.category))
    meta = record.metadata
    if meta is not None:
        if not isinstance(meta, RecordMetadata):
            raise TypeError(f"metadata is a RecordMetadata, not {type(meta).__name__}")
        if isinstance(meta.purposes, str) or isinstance(meta.shared_with, str):
            raise TypeError("metadata purposes and shared_with are sequences of names")
        for purpose in meta.purposes:
            lib.shredkv_record_add_purpose(r, encode_name(purpose))
        if meta.origin:
            origin = encode_text(meta.origin, "origin")
            lib.shredkv_record_set_origin(r, origin, len(origin))
        for recipient in meta.shared_with:
            lib.shredkv_record_add_shared_with(r, encode_name(recipient))
        if flag(meta.automated_decision, "automated_decision"):
            lib.shredkv_record_set_automated_decision(r, 1)
        if meta.expires_ms:
            lib.shredkv_record_set_expires_ms(r, meta.expires_ms)
    return r


def read_analytics(row: Any) -> AnalyticsRow:
    anon = _new(_U8_16)
    lib.shredkv_analytics_anon_id(row, anon)
    return AnalyticsRow(
        bytes(anon), decode(lib.shredkv_analytics_name(row)), lib.shredkv_analytics_ts_ms(row),
        lib.shredkv_analytics_seq(row), read_attrs(lib.shredkv_analytics_fields(row)),
    )


# ---- people, notices, restriction, consent ------------------------------------------------


def read_person_info(info: Any) -> PersonInfo:
    pid = _pid_of(lib.shredkv_person_info_id, info)
    anon = _new(_U8_16)
    lib.shredkv_person_info_anon_id(info, anon)
    vp = _new(_CCHARPP)
    lp = _new(_SIZE_P)
    idents = []
    for i in range(lib.shredkv_person_info_identifier_count(info)):
        t = lib.shredkv_person_info_identifier(info, i, vp, lp)
        idents.append(Identifier(decode(t), decode_n(vp[0], lp[0])))
    return PersonInfo(pid, bytes(anon), lib.shredkv_person_info_created_ms(info),
                      lib.shredkv_person_info_key_epoch(info), tuple(idents))


def read_notice(n: Any) -> Notice:
    kind = NoticeKind._of(lib.shredkv_notice_kind(n))
    return Notice(
        lib.shredkv_notice_cursor(n), kind, _pid_of(lib.shredkv_notice_person, n),
        lib.shredkv_notice_time_ms(n),
        tuple(decode(lib.shredkv_notice_name(n, i)) for i in range(lib.shredkv_notice_name_count(n))),
    )


def read_restriction(r: Any) -> RestrictionState:
    return RestrictionState(
        bool(lib.shredkv_restriction_all(r)),
        tuple(decode(lib.shredkv_restriction_purpose(r, i))
              for i in range(lib.shredkv_restriction_purpose_count(r))),
        tuple(decode(lib.shredkv_restriction_category(r, i))
              for i in range(lib.shredkv_restriction_category_count(r))),
        lib.shredkv_restriction_updated_ms(r),
    )


def read_consent(c: Any) -> ConsentRecord:
    return ConsentRecord(
        ConsentAction(lib.shredkv_consent_action(c)),
        decode(lib.shredkv_consent_purpose(c)),
        bool(lib.shredkv_consent_restriction_all(c)),
        tuple(decode(lib.shredkv_consent_restriction_purpose(c, i))
              for i in range(lib.shredkv_consent_restriction_purpose_count(c))),
        tuple(decode(lib.shredkv_consent_restriction_category(c, i))
              for i in range(lib.shredkv_consent_restriction_category_count(c))),
        decode(lib.shredkv_consent_restriction_reason(c)),
        lib.shredkv_consent_time_ms(c),
        decode(lib.shredkv_consent_source(c)),
    )


def read_consent_list(lst: Any) -> List[ConsentRecord]:
    return [read_consent(lib.shredkv_consent_list_at(lst, i)) for i in range(lib.shredkv_consent_list_count(lst))]


# ---- export items --------------------------------------------------------------------------


def read_export_item(item: Any) -> ExportItem:
    kind = lib.shredkv_export_item_kind(item)
    if kind == 0:
        value: Any = read_person_info(lib.shredkv_export_item_person(item))
    elif kind == 1:
        vp = _new(_CCHARPP)
        lp = _new(_SIZE_P)
        t = lib.shredkv_export_item_identifier(item, vp, lp)
        value = Identifier(decode(t), decode_n(vp[0], lp[0]))
    elif kind == 2:
        value = read_attrs(lib.shredkv_export_item_profile(item))
    elif kind == 3:
        value = read_restriction(lib.shredkv_export_item_restriction(item))
    elif kind == 4:
        value = read_consent(lib.shredkv_export_item_consent(item))
    elif kind == 5:
        value = read_event(lib.shredkv_export_item_event(item))
    elif kind == 6:
        value = read_record(lib.shredkv_export_item_record(item))
    elif kind == 7:
        value = read_analytics(lib.shredkv_export_item_analytics(item))
    elif kind == 8:
        value = read_notice(lib.shredkv_export_item_notice(item))
    else:
        return ExportItem(kind, None)  # a kind newer than this binding
    return ExportItem(ExportKind(kind), value)


# ---- erasure receipts --------------------------------------------------------------------


def read_receipt(r: Any) -> ErasureReceipt:
    return ErasureReceipt(
        request_id=decode(lib.shredkv_receipt_request_id(r)),
        erased_at_ms=lib.shredkv_receipt_erased_at_ms(r),
        people=lib.shredkv_receipt_people(r),
        analytics=AnalyticsOnErase._of(lib.shredkv_receipt_analytics(r)),
        suppressed=bool(lib.shredkv_receipt_suppressed(r)),
        level=ErasureLevel._of(lib.shredkv_receipt_level(r)),
        cryptographic=bool(lib.shredkv_receipt_cryptographic(r)),
        purged=bool(lib.shredkv_receipt_purged(r)),
        key_epoch=lib.shredkv_receipt_key_epoch(r),
        audit_hash=decode(lib.shredkv_receipt_audit_hash(r)),
        category=decode(lib.shredkv_receipt_category(r)),
    )


def take_receipt(pp: Any) -> ErasureReceipt:
    """Reads and destroys the owned receipt in *pp."""
    r = pp[0]
    try:
        return read_receipt(r)
    finally:
        pp[0] = NULL
        lib.shredkv_receipt_destroy(r)


# ---- backups ---------------------------------------------------------------------------------


def read_backup_info(info: Any) -> BackupInfo:
    return BackupInfo(
        directory=decode(lib.shredkv_backup_info_directory(info)),
        store_id=decode(lib.shredkv_backup_info_store_id(info)),
        created_ms=lib.shredkv_backup_info_created_ms(info),
        current_epoch=lib.shredkv_backup_info_current_epoch(info),
        oldest_epoch=lib.shredkv_backup_info_oldest_epoch(info),
        people=lib.shredkv_backup_info_people(info),
        keys_bytes=lib.shredkv_backup_info_keys_bytes(info),
        data_bytes=lib.shredkv_backup_info_data_bytes(info),
        custody_labels=tuple(decode(lib.shredkv_backup_info_custody_label(info, i))
                             for i in range(lib.shredkv_backup_info_custody_label_count(info))),
    )


def take_backup_info(pp: Any) -> BackupInfo:
    info = pp[0]
    try:
        return read_backup_info(info)
    finally:
        pp[0] = NULL
        lib.shredkv_backup_info_destroy(info)


# ---- retention rules ---------------------------------------------------------------------------


def build_retention(rules: Retention) -> Any:
    """An owned shredkv_retention_t* (gc'd)."""
    if not isinstance(rules, Retention):
        raise TypeError(f"expected a shredkv.Retention, not {type(rules).__name__}")
    r = ffi.gc(lib.shredkv_retention_create(), lib.shredkv_retention_destroy)
    for name, age in rules.events.items():
        lib.shredkv_retention_set_event(r, encode_name(name), age)
    for name, age in rules.collections.items():
        cb = encode_text(name, "collection")  # data: any byte (outside audit 32a, F4)
        lib.shredkv_retention_set_collection_n(r, cb, len(cb), age)
    if rules.analytics:
        lib.shredkv_retention_set_analytics(r, rules.analytics)
    if rules.feed:
        lib.shredkv_retention_set_feed(r, rules.feed)
    return r


def read_retention(r: Any) -> Retention:
    age = _new(_I64_P)
    events: Dict[str, int] = {}
    for i in range(lib.shredkv_retention_event_count(r)):
        name = decode(lib.shredkv_retention_event(r, i, age))
        events[name] = age[0]
    collections: Dict[str, int] = {}
    length = _new(_SIZE_P)
    for i in range(lib.shredkv_retention_collection_count(r)):
        p = lib.shredkv_retention_collection_n(r, i, length, age)
        collections[decode_n(p, length[0])] = age[0]
    return Retention(events, collections, lib.shredkv_retention_analytics(r), lib.shredkv_retention_feed(r))


# ---- rectifications ------------------------------------------------------------------------------


class Rectification:
    """Corrections applied atomically by Store.rectify / WriteBatch.rectify
    (GDPR Art. 16). Build it with the chaining methods::

        r = (Rectification()
             .set_profile({"city": "Berlin"})
             .unset_profile("nickname")
             .replace_identifier(("email", "old@x.org"), ("email", "new@x.org"))
             .correct_event(ts_ms, seq, set={"amount": 20.0}, unset=["coupon"]))
    """

    def __init__(self) -> None:
        self.profile_set: Dict[str, Any] = {}
        self.profile_unset: List[str] = []
        self.identifiers: List[Tuple[Any, Any]] = []
        self.events: List[Tuple[int, int, Dict[str, Any], List[str]]] = []

    def set_profile(self, values: Dict[str, Any]) -> "Rectification":
        self.profile_set.update(values)
        return self

    def unset_profile(self, *names: str) -> "Rectification":
        self.profile_unset.extend(names)
        return self

    def replace_identifier(self, old: Any, new: Any) -> "Rectification":
        self.identifiers.append((old, new))
        return self

    def correct_event(self, ts_ms: int, seq: int, set: Optional[Dict[str, Any]] = None,
                      unset: Any = ()) -> "Rectification":
        if isinstance(unset, str):
            raise TypeError("unset is a sequence of names, not a single str")
        self.events.append((ts_ms, seq, dict(set or {}), list(unset)))
        return self

    def _build(self) -> Any:
        """An owned shredkv_rectification_t* (gc'd)."""
        r = ffi.gc(lib.shredkv_rectification_create(), lib.shredkv_rectification_destroy)
        if self.profile_set:
            a = lib.shredkv_attrs_create()
            try:
                fill_attrs(a, self.profile_set)
                lib.shredkv_rectification_set_profile(r, a)
            finally:
                lib.shredkv_attrs_destroy(a)
        for name in self.profile_unset:
            lib.shredkv_rectification_unset_profile(r, encode_name(name))
        for old, new in self.identifiers:
            o, ok = identifier_struct(old)
            n, nk = identifier_struct(new)
            lib.shredkv_rectification_replace_identifier(r, o, n)
            del ok, nk
        for ts_ms, seq, set_values, unset in self.events:
            arr, count = unset_array(tuple(unset))
            if set_values:
                a = lib.shredkv_attrs_create()
                try:
                    fill_attrs(a, set_values)
                    lib.shredkv_rectification_correct_event(r, ts_ms, seq, a, arr, count)
                finally:
                    lib.shredkv_attrs_destroy(a)
            else:
                lib.shredkv_rectification_correct_event(r, ts_ms, seq, NULL, arr, count)
        return r


__all__ = [
    "read_event", "read_record", "build_record", "read_analytics", "read_person_info", "read_notice",
    "read_restriction", "read_consent", "read_consent_list", "read_export_item", "read_receipt",
    "take_receipt", "read_backup_info", "take_backup_info", "build_retention", "read_retention",
    "Rectification", "name_array", "AuditAction",
]
