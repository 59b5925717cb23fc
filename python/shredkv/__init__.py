"""shredkv: Python binding of the shredkv storage engine for personal data
with crypto-shredding (the C API, include/shredkv/c.h, through cffi in ABI
mode). See docs/python.md.

    import shredkv

    with shredkv.Store.open("/tmp/store", key=shredkv.raw_key(key32), create=True) as store:
        ann = store.create_person([("email", "ann@example.org")], {"name": "Ann"})
        store.append_event(ann, "login", shredkv.Timestamp.now())
        receipt = store.erase(ann)
"""
from __future__ import annotations

from typing import Tuple

from ._errors import (
    AlreadyExists, AuthenticationFailed, Busy, Corruption, Erased, Error, FailedPrecondition,
    Internal, InvalidArgument, KeyDestroyed, NotFound, ReadOnly, Restricted, StoreFull, StoreIOError,
    Suppressed, UnsupportedVersion, WrongKey, code_name, ERROR_CLASSES,
)
from ._ffi import ffi, lib
from ._types import (
    AnalyticsOnErase, AnalyticsRow, Attributes, AuditAction, AuditRecord, AuditVerification,
    BackupInfo, Cipher, CompactionResult, ConsentAction, ConsentRecord, Durability, ErasedCategory,
    ErasedPerson, ErasureLevel, ErasureLogApplied, ErasureReceipt, ExportItem, ExportKind,
    FoundRecord, Identifier, ImportResult, LawfulBasis, LogLevel, MaintenanceInfo, MaintenanceJob,
    Normalization, Notice, NoticeKind, OperationStats, PersonId, PersonInfo, PurgeResult, Record,
    RecordMetadata, RestoreResult, RestoredCustodyKeys, RestrictionState, Retention,
    RotationResult, StoredEvent, SuppressedIdentifier, SweepResult, Timestamp, TrackingPolicy,
    Value, ValueType, VerifyReport,
)
from ._convert import Rectification
from ._options import (
    Custody, KeyProvider, Listener, create_key_file, key_callback, key_file, passphrase, pkcs11_custody,
    raw_key,
)
from ._store import (
    ErasureLog, Lease, ScanIterator, Store, WriteBatch, check_new_identifier, normalize_identifier, read_backup_info,
    restore_backup,
    reapply_erasure_log,
    restore_sharded,
    rotate_root_key_sharded,
)

__version__ = "0.1.0"


def version() -> str:
    """The loaded library's version ("0.1.0", shredkv_version)."""
    return ffi.string(lib.shredkv_version()).decode("ascii")


def version_info() -> Tuple[int, int, int]:
    """The loaded library's (major, minor, patch)."""
    parts = ffi.new("int[3]")
    lib.shredkv_version_numbers(parts, parts + 1, parts + 2)
    return (parts[0], parts[1], parts[2])


__all__ = [
    # store and friends
    "Store", "WriteBatch", "Lease", "ScanIterator", "Rectification", "ErasureLog",
    "read_backup_info", "restore_backup", "reapply_erasure_log", "restore_sharded", "rotate_root_key_sharded",
    "normalize_identifier", "check_new_identifier",
    # keys
    "KeyProvider", "key_file", "key_callback", "passphrase", "raw_key", "create_key_file", "Custody", "pkcs11_custody",
    "Listener",
    # values
    "PersonId", "Identifier", "Timestamp", "Value", "Attributes", "Record", "RecordMetadata",
    "FoundRecord", "StoredEvent", "AnalyticsRow", "PersonInfo", "Notice", "RestrictionState",
    "ConsentRecord", "ExportItem", "ImportResult", "ErasureReceipt", "PurgeResult", "SweepResult",
    "RotationResult", "CompactionResult", "AuditVerification", "AuditRecord", "VerifyReport",
    "OperationStats", "MaintenanceInfo", "Retention", "BackupInfo", "ErasedPerson", "ErasedCategory",
    "SuppressedIdentifier", "ErasureLogApplied", "RestoreResult",
    # enums
    "ValueType", "AnalyticsOnErase", "ErasureLevel", "NoticeKind", "ConsentAction", "AuditAction",
    "Durability", "Cipher", "Normalization", "LawfulBasis", "TrackingPolicy", "LogLevel",
    "MaintenanceJob", "ExportKind", "RestoredCustodyKeys",
    # errors
    "Error", "NotFound", "Erased", "Restricted", "Suppressed", "AlreadyExists", "InvalidArgument",
    "Corruption", "AuthenticationFailed", "WrongKey", "StoreFull", "Busy", "StoreIOError",
    "FailedPrecondition", "Internal", "UnsupportedVersion", "ReadOnly", "KeyDestroyed",
    "ERROR_CLASSES", "code_name",
    # library
    "version", "version_info", "__version__",
]
