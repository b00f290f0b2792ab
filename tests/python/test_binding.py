"""Binding-level checks that need no registrar: prototypes against the header,
library lookup, error mapping, argument validation."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

import sipreg
from sipreg import _lib

ROOT = Path(__file__).resolve().parents[2]
HEADER = ROOT / "include" / "sipreg.h"
BINDINGS = ROOT / "bindings" / "python"


# ---------------------------------------------------------------------------
# Header parsing


def _header_text() -> str:
    text = HEADER.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _split_params(params: str) -> List[str]:
    params = " ".join(params.split())
    if params in ("", "void"):
        return []
    return [p.strip() for p in params.split(",")]


def _param_type(param: str) -> str:
    """Drops the parameter name: 'const char *aor' -> 'const char *'."""
    m = re.match(r"^(.*?)(\w+)$", param.strip())
    assert m, param
    ctype = m.group(1).strip()
    return " ".join(ctype.replace("*", " * ").split()).replace("* *", "**")


def header_functions() -> Dict[str, Tuple[str, List[str]]]:
    """name -> (return type, [param types]) for every function declared in the header."""
    text = _header_text()
    start = text.index('extern "C" {')
    end = text.index("#endif", text.rindex("#ifdef __cplusplus"))
    block = re.sub(r"^\s*#.*$", "", text[start + len('extern "C" {') : end], flags=re.M)
    out: Dict[str, Tuple[str, List[str]]] = {}
    for stmt in block.split(";"):
        stmt = " ".join(stmt.split()).rstrip("}").strip()
        if not stmt:
            continue
        m = re.fullmatch(r"(.+?)\b(sipreg_\w+)\s*\((.*)\)", stmt)
        assert m, f"unparsed declaration in sipreg.h: {stmt!r}"
        ret = " ".join(m.group(1).replace("*", " * ").split())
        out[m.group(2)] = (ret, [_param_type(p) for p in _split_params(m.group(3))])
    return out


def header_callbacks() -> Dict[str, Tuple[str, List[str]]]:
    text = _header_text()
    out = {}
    for m in re.finditer(r"typedef\s+(\w+)\s*\(\s*\*\s*(sipreg_\w+)\s*\)\s*\(([^()]*)\)\s*;", text):
        out[m.group(2)] = (m.group(1), [_param_type(p) for p in _split_params(m.group(3))])
    return out


def header_structs() -> Dict[str, List[Tuple[str, str]]]:
    text = _header_text()
    out = {}
    for m in re.finditer(r"typedef\s+struct\s+(sipreg_\w+)\s*\{([^}]*)\}\s*\1\s*;", text):
        fields = []
        for decl in m.group(2).split(";"):
            decl = decl.strip()
            if decl:
                fields.append((re.match(r"^(.*?)(\w+)$", decl).group(2), _param_type(decl)))
        out[m.group(1)] = fields
    return out


_SCALARS: Dict[str, Any] = {
    "void": None,
    "bool": ctypes.c_bool,
    "double": ctypes.c_double,
    "size_t": ctypes.c_size_t,
    "int": ctypes.c_int,
    "int32_t": ctypes.c_int32,
    "uint16_t": ctypes.c_uint16,
    "uint32_t": ctypes.c_uint32,
    "uint64_t": ctypes.c_uint64,
    "int64_t": ctypes.c_int64,
    "const char *": ctypes.c_char_p,
    "const char * const *": ctypes.POINTER(ctypes.c_char_p),
    "char *": ctypes.POINTER(ctypes.c_char),
    "void *": ctypes.c_void_p,
}


def expected_ctype(ctype: str) -> Any:
    """The ctypes type the binding must use for a C type of the header."""
    ctype = ctype.replace("const struct", "struct")
    if ctype in _SCALARS:
        return _SCALARS[ctype]
    if re.fullmatch(r"enum sipreg_\w+", ctype):
        return ctypes.c_int  # C enums are int-sized
    if ctype in _lib.CALLBACK_TYPES:
        return _lib.CALLBACK_TYPES[ctype]
    m = re.fullmatch(r"struct (sipreg_\w+) \*", ctype)
    if m:
        name = m.group(1)
        if name in _lib.STRUCT_TYPES:
            return ctypes.POINTER(_lib.STRUCT_TYPES[name])
        return ctypes.c_void_p  # opaque handle
    m = re.fullmatch(r"struct (sipreg_\w+) \*\*", ctype)
    if m:
        return ctypes.POINTER(ctypes.c_void_p)
    m = re.fullmatch(r"((?:enum )?\w+) \*", ctype)
    if m:
        inner = expected_ctype(m.group(1))
        assert inner is not None, ctype
        return ctypes.POINTER(inner)
    raise AssertionError(f"no ctypes mapping for C type {ctype!r}")


def test_header_parse_sanity() -> None:
    fns = header_functions()
    assert len(fns) >= 50
    assert fns["sipreg_registerer_free"] == ("void", ["struct sipreg_registerer *"])
    assert fns["sipreg_version"] == ("const char *", [])
    assert fns["sipreg_user_agent_new"][1] == ["const char *", "struct sipreg_user_agent **"]


def test_every_header_function_has_argtypes_and_restype() -> None:
    """Every function in include/sipreg.h is bound with argtypes and restype that match."""
    fns = header_functions()
    missing = sorted(set(fns) - set(_lib.PROTOTYPES))
    assert not missing, f"functions of sipreg.h without a prototype in the binding: {missing}"
    extra = sorted(set(_lib.PROTOTYPES) - set(fns))
    assert not extra, f"prototypes for functions not in sipreg.h: {extra}"
    problems = []
    for name, (ret, params) in sorted(fns.items()):
        fn = getattr(_lib.lib, name)
        if fn.argtypes is None:
            problems.append(f"{name}: argtypes not set")
            continue
        want_args = [expected_ctype(p) for p in params]
        if list(fn.argtypes) != want_args:
            problems.append(f"{name}: argtypes {fn.argtypes} != {want_args} ({params})")
        want_ret = expected_ctype(ret)
        if fn.restype is not want_ret:
            problems.append(f"{name}: restype {fn.restype} != {want_ret} ({ret})")
        if _lib.PROTOTYPES[name][0] is not fn.restype:
            problems.append(f"{name}: restype differs from the prototype table")
    assert not problems, "\n".join(problems)


def test_callback_types_match_header() -> None:
    cbs = header_callbacks()
    assert set(cbs) == set(_lib.CALLBACK_TYPES)
    for name, (ret, params) in cbs.items():
        t = _lib.CALLBACK_TYPES[name]
        assert t._restype_ is _SCALARS[ret], name
        assert list(t._argtypes_) == [expected_ctype(p) for p in params], name


def test_struct_layouts_match_header() -> None:
    structs = header_structs()
    assert set(structs) == set(_lib.STRUCT_TYPES)
    for name, fields in structs.items():
        ours = _lib.STRUCT_TYPES[name]._fields_
        assert [f for f, _ in ours] == [f for f, _ in fields], name
        for (fname, ftype), (_, ctype) in zip(ours, fields):
            want = expected_ctype(ctype)
            assert ftype is want, f"{name}.{fname}: {ftype} != {want} ({ctype})"


def test_enums_match_header() -> None:
    text = _header_text()

    def values(enum: str) -> Dict[str, int]:
        body = re.search(r"typedef enum %s \{(.*?)\}" % enum, text, re.S).group(1)
        return {k: int(v) for k, v in re.findall(r"(\w+)\s*=\s*(\d+)", body)}

    states = values("sipreg_state")
    assert {f"SIPREG_STATE_{s.name}": s.value for s in sipreg.RegistererState} == states
    kinds = values("sipreg_event_kind")
    assert {f"SIPREG_EVENT_{k.name}": k.value for k in sipreg.EventKind} == kinds
    results = values("sipreg_result")
    for name, code in results.items():
        assert getattr(_lib, name) == code
        assert sipreg._errors.RESULT_NAMES[code] == name
        assert _lib.result_name(code) == name
    assert values("sipreg_log_level") == {
        n: getattr(_lib, n) for n in values("sipreg_log_level")
    }


# ---------------------------------------------------------------------------
# Library lookup


def test_library_not_found_lists_tried_paths(tmp_path: Path) -> None:
    """Without a usable library, import fails with an ImportError listing every path tried."""
    import ctypes.util

    if ctypes.util.find_library("sipreg"):
        pytest.skip("libsipreg is installed system-wide: the last fallback would load it")
    pkg_parent = tmp_path / "site"
    shutil.copytree(BINDINGS / "sipreg", pkg_parent / "sipreg")
    for so in (pkg_parent / "sipreg").glob("libsipreg*"):
        so.unlink()
    bogus = tmp_path / "nowhere" / "libsipreg.so"
    code = (
        "import sys\n"
        "try:\n"
        "    import sipreg\n"
        "except ImportError as e:\n"
        "    print(type(e).__name__, isinstance(e, ImportError))\n"
        "    print(e)\n"
        "    sys.exit(3)\n"
        "sys.exit(0)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(pkg_parent), "SIPREG_LIBRARY": str(bogus)}
    p = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 3, p.stdout + p.stderr
    assert "LibraryNotFoundError True" in p.stdout
    assert str(bogus) in p.stdout
    assert str(pkg_parent / "sipreg" / _lib.LIBRARY_FILE) in p.stdout
    assert "system library search path" in p.stdout
    assert "SIPREG_LIBRARY" in p.stdout


def test_cargo_target_dir_is_found(tmp_path: Path) -> None:
    """Walking up from the package finds the repository's target/{release,debug}."""
    cands = [p for kind, p in _lib.candidate_paths(BINDINGS / "sipreg", system=False) if kind == "cargo"]
    assert any(p.endswith("target/debug/" + _lib.LIBRARY_FILE) for p in cands), cands
    assert any(p.endswith("target/release/" + _lib.LIBRARY_FILE) for p in cands), cands
    # And nothing is found above a directory without Cargo.toml.
    assert _lib._cargo_candidates(tmp_path) == [] or all(
        not p.startswith(str(tmp_path)) for p in map(str, _lib._cargo_candidates(tmp_path))
    )


def test_library_loaded_and_version() -> None:
    assert Path(sipreg.library_path).is_file()
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", sipreg.version())
    m = re.search(r'#define SIPREG_VERSION "([^"]+)"', HEADER.read_text())
    assert m and sipreg.version() == m.group(1)


# ---------------------------------------------------------------------------
# Errors and validation (no network)


def test_error_hierarchy() -> None:
    for cls in (
        sipreg.NullArgumentError,
        sipreg.InvalidArgumentError,
        sipreg.RequestPendingError,
        sipreg.TerminatedError,
        sipreg.TransportError,
        sipreg.BufferTooSmallError,
        sipreg.InternalError,
        sipreg.LibraryNotFoundError,
    ):
        assert issubclass(cls, sipreg.SipregError)
    assert issubclass(sipreg.InvalidArgumentError, ValueError)
    assert issubclass(sipreg.LibraryNotFoundError, ImportError)
    for code in range(1, 8):
        assert sipreg._errors.error_for_code(code).result_code == code


def test_invalid_aor_raises_with_last_error_text() -> None:
    with pytest.raises(sipreg.InvalidArgumentError) as ei:
        sipreg.UserAgent("not a uri")
    e = ei.value
    assert isinstance(e, ValueError)
    assert e.code == 2 and e.function == "sipreg_user_agent_new"
    assert e.detail and e.detail in str(e)
    assert "SIPREG_ERR_INVALID_ARGUMENT" in str(e)


def test_null_handle_maps_to_null_argument_error() -> None:
    with pytest.raises(sipreg.NullArgumentError):
        _lib.check(_lib.lib.sipreg_register(None), "sipreg_register")
    # A made-up handle is rejected, never dereferenced.
    with pytest.raises(sipreg.InvalidArgumentError):
        _lib.check(_lib.lib.sipreg_register(0x7FFF_FFFF_0000), "sipreg_register")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"expires": 0},
        {"expires": -5},
        {"expires": "600"},
        {"refresh_frequency": 10},
        {"registrar": "garbage uri"},
        {"extra_headers": "X-Foo: bar"},
        {"extra_headers": ("no colon here",)},
        {"reg_id": 1},  # without an instance id
        {"call_id": "bad\0id"},
    ],
)
def test_invalid_options_raise_invalid_argument(kwargs: dict) -> None:
    with sipreg.UserAgent("sip:user1@127.0.0.1", password="pw-user1") as ua:
        with pytest.raises(sipreg.InvalidArgumentError):
            sipreg.Registerer(ua, **kwargs)


def test_invalid_user_agent_settings() -> None:
    with pytest.raises(sipreg.InvalidArgumentError):
        sipreg.UserAgent("sip:a@127.0.0.1", transport="carrier-pigeon")
    with pytest.raises(sipreg.InvalidArgumentError):
        sipreg.UserAgent("sip:a@127.0.0.1", t1=-1.0)
    with pytest.raises(sipreg.InvalidArgumentError):
        sipreg.UserAgent("sip:a@127.0.0.1", local_address="not-an-ip")


def test_closed_user_agent_and_idempotent_close() -> None:
    ua = sipreg.UserAgent("sip:user2@127.0.0.1")
    r = sipreg.Registerer(ua, registrar="sip:127.0.0.1:9")
    ua.close()
    ua.close()  # no-op
    assert ua.closed
    assert r.state == sipreg.RegistererState.TERMINATED
    with pytest.raises(sipreg.TerminatedError):
        sipreg.Registerer(ua)
    with pytest.raises(sipreg.TerminatedError):
        ua.network_changed()
    with pytest.raises(sipreg.TerminatedError):
        r.register()
    r.dispose()  # no-op
    r.close()  # no-op


def test_initial_properties() -> None:
    with sipreg.UserAgent("sip:user3@127.0.0.1") as ua:
        with sipreg.Registerer(ua, registrar="sip:127.0.0.1:9") as r:
            assert r.state is sipreg.RegistererState.INITIAL
            assert r.contacts == []
            assert r.retry_after is None
            assert r.last_response is None
            assert r.next_retry is None
            assert r.failure_count == 0
            assert r.responses == []
            assert r.user_agent is ua
            assert ua.stats == {
                "received": 0, "dropped": 0, "sent": 0, "transport_errors": 0,
                "window": 0, "in_flight": 0, "queued": 0,
                "requests": 0, "answered": 0,
            }
            assert r.flow_id is None
            seen: list = []
            r.state_change.add_listener(seen.append)
        # Disposing an INITIAL registerer goes straight to TERMINATED.
        assert seen == [sipreg.RegistererState.TERMINATED]
        assert r.state is sipreg.RegistererState.TERMINATED


def test_emitter_add_remove() -> None:
    em: sipreg.Emitter = sipreg.Emitter("test")
    calls: list = []

    def a(x: int) -> None:
        calls.append(("a", x))

    em.add_listener(a)
    em.add_listener(lambda x: calls.append(("once", x)), once=True)
    em.emit(1)
    em.emit(2)
    em.remove_listener(a)
    em.remove_listener(a)  # absent: no error
    em.emit(3)
    assert calls == [("a", 1), ("once", 1), ("a", 2)]
    with pytest.raises(TypeError):
        em.add_listener(42)  # type: ignore[arg-type]


def test_log_callback_routes_into_logging(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG, logger="sipreg")
    with sipreg.UserAgent("sip:user5@127.0.0.1") as ua:
        # Creating and disposing a registerer makes the library log something.
        with sipreg.Registerer(ua, registrar="sip:127.0.0.1:9"):
            pass
    assert any(rec.name == "sipreg" for rec in caplog.records), caplog.records


def test_set_log_level_filters_in_the_library(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG, logger="sipreg")
    try:
        sipreg.set_log_level(logging.WARNING)
        with sipreg.UserAgent("sip:user6@127.0.0.1") as ua:
            with sipreg.Registerer(ua, registrar="sip:127.0.0.1:9"):
                pass
        assert not [r for r in caplog.records if r.name == "sipreg" and r.levelno < logging.WARNING]
        sipreg.set_log_level(None)
        sipreg.set_log_level(logging.DEBUG)
        caplog.clear()
        with sipreg.UserAgent("sip:user6@127.0.0.1") as ua:
            with sipreg.Registerer(ua, registrar="sip:127.0.0.1:9"):
                pass
        assert [r for r in caplog.records if r.name == "sipreg" and r.levelno < logging.WARNING]
    finally:
        sipreg.set_log_level(logging.DEBUG)


def test_every_result_function_documents_its_codes() -> None:
    """Each function returning sipreg_result lists the codes it can return in
    its header comment; every string accessor that can answer BUFFER_TOO_SMALL
    takes a ``size_t *needed``."""
    text = HEADER.read_text()
    codes = set(re.findall(r"\b(SIPREG_(?:OK|ERR_[A-Z_]+))\s*=", text))
    undocumented, unknown, no_needed = [], [], []
    for m in re.finditer(r"/\*\*((?:(?!\*/).)*)\*/\s*enum sipreg_result (\w+)\(([^)]*)\)", text, re.S):
        doc, name, params = m.group(1), m.group(2), m.group(3)
        if "SIPREG_OK" not in doc:
            undocumented.append(name)
        unknown += [f"{name}: {c}" for c in re.findall(r"SIPREG_(?:OK|ERR_[A-Z_]+)", doc) if c not in codes]
        if "SIPREG_ERR_BUFFER_TOO_SMALL" in doc and "size_t *needed" not in params:
            no_needed.append(name)
    assert len(re.findall(r"enum sipreg_result \w+\(", text)) > 60
    assert undocumented == [], undocumented
    assert unknown == [], unknown
    assert no_needed == [], no_needed


def test_failure_kinds_match_header() -> None:
    body = re.search(r"typedef enum sipreg_failure \{(.*?)\}", _header_text(), re.S).group(1)
    values = {k: int(v) for k, v in re.findall(r"(\w+)\s*=\s*(\d+)", body)}
    assert values.pop("SIPREG_FAILURE_NONE") == 0
    assert {f"SIPREG_FAILURE_{k.name}": k.value for k in sipreg.FailureKind} == values
