"""The binding's cdef is the header's declarations (no drift), every
function the header declares is exported by the library, and nothing makes
cffi hold the GIL during calls."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

import shredkv
from shredkv import _cdef, _ffi

PYTHON_DIR = Path(__file__).resolve().parent.parent
HEADER = PYTHON_DIR.parent / "include" / "shredkv" / "c.h"
GENERATOR = PYTHON_DIR / "tools" / "gen_cdef.py"
COMMITTED = PYTHON_DIR / "shredkv" / "_cdef.py"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_cdef", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_cdef_matches_header() -> None:
    gen = _generator()
    expected = gen.generate_module(HEADER.read_text(encoding="utf-8"))
    assert COMMITTED.read_text(encoding="utf-8") == expected, (
        "python/shredkv/_cdef.py is stale: run /usr/bin/python3 python/tools/gen_cdef.py")


def test_installed_cdef_matches_header() -> None:
    gen = _generator()
    assert _cdef.CDEF.lstrip("\n") == gen.generate_cdef(HEADER.read_text(encoding="utf-8")), (
        "the installed shredkv package is stale: reinstall ./python")


def test_generator_strips_comments_preprocessor_and_export() -> None:
    gen = _generator()
    text = gen.generate_cdef(
        "/* a\n comment */\n#ifndef X_H_\n#define X_H_\n#include <stddef.h>\n"
        "#ifdef __cplusplus\nextern \"C\" {\n#endif\n"
        "SHREDKV_EXPORT int f(int a); // trailing\n"
        "typedef enum e { SHREDKV_EXPORT_JSON = 0 } e_t;\n"
        "#ifdef __cplusplus\n}\n#endif\n#endif\n")
    assert text == "int f(int a);\ntypedef enum e { SHREDKV_EXPORT_JSON = 0 } e_t;\n"


def _declared_functions() -> list:
    return sorted(set(re.findall(r"\b(shredkv_[a-z0-9_]+)\s*\(", _cdef.CDEF)))


def test_library_exports_every_declared_function() -> None:
    names = _declared_functions()
    assert len(names) > 200
    missing = []
    for name in names:
        try:
            getattr(_ffi.lib, name)
        except AttributeError:
            missing.append(name)
    assert not missing, f"not exported by the library: {missing}"


def test_version_matches_package() -> None:
    assert shredkv.version() == "%d.%d.%d" % shredkv.version_info()
    assert shredkv.version_info()[0] == 0  # the soname's major


def test_calls_go_through_cffi_which_releases_the_gil() -> None:
    # cffi releases the GIL around every call of a C function (ABI mode
    # too) and offers no flag to keep it. Check that what the binding calls
    # are cffi's own function cdata (no Python wrapper in between); the
    # behaviour itself is shown by test_threads.py (by outcome, not timing).
    import _cffi_backend

    assert _ffi.ffi._backend is _cffi_backend
    for name in ("shredkv_resolve", "shredkv_write", "shredkv_writebatch_append_event", "shredkv_erase"):
        fn = getattr(_ffi.lib, name)
        assert isinstance(fn, _ffi.ffi.CData)
        assert _ffi.ffi.typeof(fn).kind == "function"
    from shredkv import _store

    assert _store._resolve is _ffi.lib.shredkv_resolve
    assert _store._wb_append is _ffi.lib.shredkv_writebatch_append_event


def test_library_override_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    # SHREDKV_LIBRARY names the library; a bad path gives an ImportError
    # naming both the variable and the soname.
    monkeypatch.setenv("SHREDKV_LIBRARY", "/nonexistent/libshredkv.so.0")
    with pytest.raises(ImportError) as info:
        _ffi._load()
    assert "SHREDKV_LIBRARY" in str(info.value) and "libshredkv.so.0" in str(info.value)
