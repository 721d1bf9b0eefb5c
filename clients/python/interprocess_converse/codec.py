"""MessagePack values as docs/PROTOCOL.md §5 defines them, with the stock ``msgpack`` package.

Mapping (Python ⇄ wire):

- ``None`` ⇄ nil, ``bool``, ``int`` (any int format; values beyond ±2**53 are what JavaScript
  sees as ``bigint``), ``float`` ⇄ float 64, ``str``, ``bytes`` ⇄ bin, ``list``/``tuple`` ⇄ array,
  ``dict`` with ``str`` keys ⇄ map;
- ``set``/``frozenset`` ⇄ the Set extension (0x53), :class:`WireMap` (or a ``dict`` with a
  non-``str`` key) ⇄ the Map extension (0x4d), :data:`UNDEFINED` ⇄ the undefined extension (0x00),
  ``datetime`` (timezone-aware) ⇄ the timestamp extension (-1).

Decoding is strict in the ways that matter to a client: one value per body, allowed extensions
only, nesting of at most 100 levels (a Set or Map counts two), map keys that are strings.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any, Iterable

import msgpack

EXT_UNDEFINED = 0x00
EXT_SET = 0x53
EXT_MAP = 0x4D
MAX_DEPTH = 100


class DecodeError(ValueError):
    """A body that is not acceptable MessagePack for this protocol (DECODE_FAILED)."""


class _Undefined:
    """JavaScript's ``undefined`` (distinct from ``None``, which is nil)."""

    _instance: "_Undefined | None" = None

    def __new__(cls) -> "_Undefined":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED = _Undefined()


class WireMap:
    """A dictionary with keys of any type (JavaScript's ``Map``), in insertion order.

    Keys that Python cannot hash (lists, dicts) are kept too: ``items`` is the list of pairs.
    """

    __slots__ = ("items",)

    def __init__(self, items: Iterable[tuple[Any, Any]] = ()) -> None:
        self.items: list[tuple[Any, Any]] = list(items)

    def get(self, key: Any, default: Any = None) -> Any:
        for k, v in self.items:
            if k == key:
                return v
        return default

    def __len__(self) -> int:
        return len(self.items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WireMap) and self.items == other.items

    def __repr__(self) -> str:
        return f"WireMap({self.items!r})"


def _default(value: Any) -> Any:
    if value is UNDEFINED:
        return msgpack.ExtType(EXT_UNDEFINED, b"\x00")
    if isinstance(value, (set, frozenset)):
        return msgpack.ExtType(EXT_SET, _pack(list(value)))
    if isinstance(value, WireSet):
        return msgpack.ExtType(EXT_SET, _pack(value.members))
    if isinstance(value, WireMap):
        flat: list[Any] = []
        for k, v in value.items:
            flat.append(k)
            flat.append(v)
        return msgpack.ExtType(EXT_MAP, _pack(flat))
    if isinstance(value, dict):
        # Only reached for a dict msgpack could not write as a map: a non-str key.
        return _default(WireMap(value.items()))
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot send a {type(value).__name__}")


def _pack(value: Any) -> bytes:
    return msgpack.packb(_prepare(value), default=_default, use_bin_type=True, datetime=True, strict_types=False)


def _prepare(value: Any) -> Any:
    """Dicts with a non-str key become Maps (a MessagePack map's keys must be strings, §5.3)."""
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _prepare(v) for k, v in value.items()}
        return WireMap((k, v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_prepare(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        raise TypeError(f"the integer {value} is outside the 64-bit range")
    return value


def pack(value: Any) -> bytes:
    """Encode one value (a frame body)."""
    try:
        return _pack(value)
    except (TypeError, ValueError, OverflowError) as error:
        raise EncodeError(str(error)) from error


class EncodeError(ValueError):
    """A value that cannot be sent (ENCODE_FAILED)."""


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_UNDEFINED:
        if len(data) != 1:
            raise DecodeError("undefined must be fixext 1")
        return UNDEFINED
    if code == EXT_SET or code == EXT_MAP:
        inner = unpack(data, _nested=True)
        if not isinstance(inner, list):
            raise DecodeError("a Set or Map extension must carry an array")
        if code == EXT_SET:
            try:
                return set(inner)
            except TypeError:
                return WireSet(inner)
        if len(inner) % 2:
            raise DecodeError("a Map extension must carry an even-length array")
        return WireMap((inner[i], inner[i + 1]) for i in range(0, len(inner), 2))
    raise DecodeError(f"extension type {code} is not allowed")


class WireSet:
    """A Set whose members Python cannot hash (lists, dicts, Maps): ``members`` in order."""

    __slots__ = ("members",)

    def __init__(self, members: Iterable[Any] = ()) -> None:
        self.members: list[Any] = list(members)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WireSet) and self.members == other.members

    def __repr__(self) -> str:
        return f"WireSet({self.members!r})"


def unpack(body: bytes, *, _nested: bool = False) -> Any:
    """Decode one body: exactly one value, allowed extensions only, depth at most 100."""
    if not body:
        raise DecodeError("an empty body is not a MessagePack value")
    if b"\xc1" in body[:1]:
        raise DecodeError("reserved byte 0xc1")
    try:
        value = msgpack.unpackb(
            body,
            raw=False,
            strict_map_key=False,
            ext_hook=_ext_hook,
            timestamp=3,  # datetime in UTC
            use_list=True,
        )
    except DecodeError:
        raise
    except Exception as error:  # ExtraData, FormatError, StackError, ValueError, …
        raise DecodeError(f"{type(error).__name__}: {error}") from error
    if not _nested:
        _check(value, 0)
    return value


def _check(value: Any, depth: int) -> None:
    if isinstance(value, list):
        if depth + 1 > MAX_DEPTH:
            raise DecodeError(f"nesting is deeper than {MAX_DEPTH} levels")
        for item in value:
            _check(item, depth + 1)
    elif isinstance(value, dict):
        if depth + 1 > MAX_DEPTH:
            raise DecodeError(f"nesting is deeper than {MAX_DEPTH} levels")
        for key, item in value.items():
            if not isinstance(key, str):
                raise DecodeError("map keys must be strings (use the Map extension)")
            if key == "__proto__":
                raise DecodeError('a map key is "__proto__"')
            _check(item, depth + 1)
    elif isinstance(value, (set, frozenset, WireSet)):
        if depth + 2 > MAX_DEPTH:
            raise DecodeError(f"nesting is deeper than {MAX_DEPTH} levels")
        for item in value.members if isinstance(value, WireSet) else value:
            _check(item, depth + 2)
    elif isinstance(value, WireMap):
        if depth + 2 > MAX_DEPTH:
            raise DecodeError(f"nesting is deeper than {MAX_DEPTH} levels")
        for k, v in value.items:
            _check(k, depth + 2)
            _check(v, depth + 2)


def timestamp(seconds: int, nanoseconds: int = 0) -> _dt.datetime:
    """The datetime for a MessagePack timestamp (UTC)."""
    return _dt.datetime.fromtimestamp(0, _dt.timezone.utc) + _dt.timedelta(seconds=seconds, microseconds=nanoseconds // 1000)
