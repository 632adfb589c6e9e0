"""The dicts ``normalize`` is given are written to JSON by the core (``_core.dumps``): the same
bytes as ``json.dumps`` in its compact, UTF-8 form, and the same errors."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import usagenorm as un
from usagenorm import _core


def reference(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode()


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
keys = st.text() | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False, allow_infinity=False)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.lists(inner, max_size=3).map(tuple) | st.dictionaries(keys, inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(values)
def test_the_same_bytes_as_json_dumps(obj):
    assert _core.dumps(obj) == reference(obj)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_are_written_as_python_writes_them(x):
    assert _core.dumps(x) == repr(x).encode()


def test_edge_floats_and_ints():
    edge = [0.0, -0.0, 1e16, 1e15, 1e-5, 1e-4, 0.00012, 5e-324, 1.7976931348623157e308, 2**63, -(2**63) - 1, 10**40]
    assert _core.dumps(edge) == reference(edge)


@pytest.mark.parametrize(
    ("obj", "error"),
    [
        ({"a": {1, 2}}, TypeError),
        ({(1, 2): 3}, TypeError),
        ([object()], TypeError),
    ],
)
def test_what_json_dumps_refuses_is_refused(obj, error):
    with pytest.raises(error):
        json.dumps(obj, allow_nan=False)
    with pytest.raises(error):
        _core.dumps(obj)


@pytest.mark.parametrize(("value", "text"), [(math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity")])
def test_a_float_json_cannot_hold_is_written_as_a_mark_the_reader_rejects(value, text):
    # json.dumps refuses it and would lose the whole page; the mark is a string the reader
    # rejects by name (U+FFFF escaped, which dumps never writes otherwise).
    assert _core.dumps([1, value]) == b'[1,"\\uffff' + text.encode() + b'"]'
    assert _core.dumps(["\uffff"]) == '["\uffff"]'.encode()
    # As a key it is a name: written as json.dumps names it.
    assert _core.dumps({value: 1}) == json.dumps({value: 1}, separators=(",", ":")).encode()


def test_a_circular_reference_is_an_error_not_a_crash():
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="circular"):
        _core.dumps(loop)
    with pytest.raises(ValueError, match="circular"):
        un.normalize([{"records": loop}])


def test_a_lone_surrogate_rejects_its_record_only():
    # Not valid Unicode, so not UTF-8: written as its escape, as json.dumps does, and the record
    # holding it is rejected by name.
    at = "2024-01-01T00:00:00Z"
    records = [{"id": "r1", "createdAt": at}, {"id": "r2\udc80", "createdAt": at}]
    keyed = records + [{"k\ud800": "\U0001f600 \ud800\ud800x"}]
    assert _core.dumps(keyed) == json.dumps(keyed, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    ).replace("\udc80".encode("utf-8", "surrogatepass"), b"\\udc80").replace(
        "\ud800".encode("utf-8", "surrogatepass"), b"\\ud800"
    )
    out = un.normalize([{"records": records}], provider="gitpod", errors="collect")
    assert out.records["record_id"].to_list() == ["r1"]
    assert out.rejected["path"].to_list() == ["$[0].records[1].id"]  # a list of dicts is one array
