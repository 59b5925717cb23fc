"""Exceptions: shredkv.Error and one subclass per status code of c.h."""
from __future__ import annotations

from typing import Any, Dict, NoReturn, Optional, Type

from ._ffi import ffi, lib


class Error(Exception):
    """A call into shredkv failed.

    ``code`` is the status code (``shredkv_code_t``), ``code_name`` its
    stable name ("NotFound"), ``message`` the library's message, which starts
    with the code name ("NotFound: no such person"). ``str(error)`` is the
    message.
    """

    code: int = -1
    code_name: str = "Unknown"
    message: str

    def __init__(self, message: str, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None and code != type(self).code:
            # An Error built for a code without a class of its own.
            self.code = code
            self.code_name = _code_name(code)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), self.message, self.code))


def _rebuild(cls: Type[Error], message: str, code: int) -> Error:
    return cls(message, code)


class NotFound(Error, LookupError):
    """SHREDKV_NOT_FOUND: no such person, record, identifier, request, ...
    Also a LookupError."""

    code = 1
    code_name = "NotFound"


class Erased(Error):
    """SHREDKV_ERASED: the person (or category) was erased."""

    code = 2
    code_name = "Erased"


class Restricted(Error):
    """SHREDKV_RESTRICTED: processing is restricted (or consent is missing)."""

    code = 3
    code_name = "Restricted"


class Suppressed(Error):
    """SHREDKV_SUPPRESSED: the identifier is on the suppression list."""

    code = 4
    code_name = "Suppressed"


class AlreadyExists(Error):
    """SHREDKV_ALREADY_EXISTS."""

    code = 5
    code_name = "AlreadyExists"


class InvalidArgument(Error, ValueError):
    """SHREDKV_INVALID_ARGUMENT. Also a ValueError."""

    code = 6
    code_name = "InvalidArgument"


class Corruption(Error):
    """SHREDKV_CORRUPTION."""

    code = 7
    code_name = "Corruption"


class AuthenticationFailed(Error):
    """SHREDKV_AUTHENTICATION_FAILED: a ciphertext did not authenticate."""

    code = 8
    code_name = "AuthenticationFailed"


class WrongKey(Error):
    """SHREDKV_WRONG_KEY: the root key does not open this store."""

    code = 9
    code_name = "WrongKey"


class StoreFull(Error):
    """SHREDKV_STORE_FULL: the map reached Options::max_map_size."""

    code = 10
    code_name = "StoreFull"


class Busy(Error):
    """SHREDKV_BUSY: retry later (leases draining, a concurrent change)."""

    code = 11
    code_name = "Busy"


class StoreIOError(Error, OSError):
    """SHREDKV_IO_ERROR. Also an OSError (with errno None): ``except OSError``
    catches it beside Python's own I/O errors."""

    code = 12
    code_name = "IOError"


class FailedPrecondition(Error):
    """SHREDKV_FAILED_PRECONDITION: e.g. the directory is already open in
    this process, or the store was closed."""

    code = 13
    code_name = "FailedPrecondition"


class Internal(Error):
    """SHREDKV_INTERNAL: a bug or an allocation failure in the library."""

    code = 14
    code_name = "Internal"


class UnsupportedVersion(Error):
    """SHREDKV_UNSUPPORTED_VERSION."""

    code = 15
    code_name = "UnsupportedVersion"


class ReadOnly(Error):
    """SHREDKV_READ_ONLY: a write on a read-only open (or a read-only
    directory)."""

    code = 16
    code_name = "ReadOnly"


class KeyDestroyed(Error):
    """SHREDKV_KEY_DESTROYED: an epoch key in a custody was destroyed."""

    code = 17
    code_name = "KeyDestroyed"


ERROR_CLASSES: Dict[int, Type[Error]] = {
    cls.code: cls
    for cls in (
        NotFound, Erased, Restricted, Suppressed, AlreadyExists, InvalidArgument, Corruption,
        AuthenticationFailed, WrongKey, StoreFull, Busy, StoreIOError, FailedPrecondition,
        Internal, UnsupportedVersion, ReadOnly, KeyDestroyed,
    )
}


def _code_name(code: int) -> str:
    return ffi.string(lib.shredkv_code_name(code)).decode("ascii", "replace")


def code_name(code: int) -> str:
    """The stable name of a status code ("NotFound"; "Unknown" outside the
    enum), from the library (shredkv_code_name)."""
    return _code_name(int(code))


def make_error(code: int, message: Optional[str] = None) -> Error:
    """The exception for `code` (not raised)."""
    cls = ERROR_CLASSES.get(code, Error)
    if message is None:
        message = _code_name(code)
    return cls(message, code)


_free = lib.shredkv_free
_string = ffi.string


def raise_error(code: int, err: Any) -> NoReturn:
    """Raises the exception for `code` with the message in `err` (a
    ``char**`` errptr), and frees the message."""
    p = err[0]
    if p:
        try:
            message = _string(p).decode("utf-8", "replace")
        finally:
            err[0] = ffi.NULL
            _free(p)
    else:
        message = _code_name(code)
    raise make_error(code, message)


def closed_error(what: str = "store") -> FailedPrecondition:
    return FailedPrecondition(f"FailedPrecondition: the {what} is closed")
