"""``dataclass``, ``field`` and ``replace`` for the classes every report run imports, made
without the standard library's cost at import.

On Python 3.11 ``dataclasses`` compiles each generated method from source at class creation
(``__init__``, ``__repr__``, ``__eq__``, and ``__hash__``, ``__setattr__``, ``__delattr__`` when
frozen): 0.3-0.9 ms a class, 12 ms for the 18 classes a cold ``daily --json`` imports, on
every run (docs/performance.md, fourteenth session). Here only ``__init__`` is compiled (one
small ``exec``); ``__repr__``, ``__eq__``, ``__hash__`` and the frozen guards are shared
functions over the class's field names: 2.35 ms for the 18 (~0.13 ms a class).

The subset tokmon's classes use, with ``dataclasses``' behaviour: fields from the class's own
annotations after its bases' (``ClassVar`` ones skipped), defaults and ``field(default=...,
default_factory=...)``, a mutable default refused, a field without a default after one with
one refused; ``frozen`` (assignment raises :class:`FrozenInstanceError`, an
``AttributeError``; ``__hash__`` from the fields), ``slots`` (the class made again with
``__slots__``; frozen ones pickle through ``__getstate__``/``__setstate__``); methods the
class defines itself are kept; an unfrozen class with ``eq`` is unhashable. Instances work
with :func:`replace` (and it with standard dataclasses too). Type checkers see the standard
library's names (``TYPE_CHECKING``), so mypy checks these classes as dataclasses.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

__all__ = ["FrozenInstanceError", "dataclass", "field", "replace"]

_MISSING: Any = type("_Missing", (), {"__repr__": lambda self: "<missing>"})()
_FIELDS = "__leanclass_fields__"  # {name: (default, factory)} of a class made here


class _Field:
    """What :func:`field` returns, read once by :func:`dataclass`."""

    __slots__ = ("default", "default_factory")

    def __init__(self, default: Any, default_factory: Any) -> None:
        self.default = default
        self.default_factory = default_factory


def _field(*, default: Any = _MISSING, default_factory: Any = _MISSING) -> Any:
    """A field's default value or the callable that makes one per instance."""
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return _Field(default, default_factory)


class _FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen instance."""


def _is_classvar(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith(("ClassVar", "typing.ClassVar", "t.ClassVar"))
    return getattr(annotation, "__origin__", annotation) is getattr(
        sys.modules.get("typing"), "ClassVar", None
    )


def _own_fields(cls: type) -> dict[str, tuple[Any, Any]]:
    """Every field of ``cls`` in ``__init__`` order: its bases' first, then its own."""
    fields: dict[str, tuple[Any, Any]] = {}
    for base in cls.__mro__[-1:0:-1]:
        fields.update(base.__dict__.get(_FIELDS, {}))
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if _is_classvar(annotation):
            continue
        default: Any = cls.__dict__.get(name, _MISSING)
        factory: Any = _MISSING
        if isinstance(default, _Field):
            default, factory = default.default, default.default_factory
        if default is not _MISSING and type(default).__hash__ is None:
            raise ValueError(
                f"mutable default {type(default)} for field {name} is not allowed:"
                " use default_factory"
            )
        fields[name] = (default, factory)
    seen_default = False
    for name, (default, factory) in fields.items():
        if default is _MISSING and factory is _MISSING:
            if seen_default:
                raise TypeError(f"non-default argument {name!r} follows default argument")
        else:
            seen_default = True
    return fields


def _make_init(cls: type, fields: dict[str, tuple[Any, Any]], frozen: bool) -> Any:
    """``__init__``, compiled once for the class (assignments in field order)."""
    args = ["self"]
    body = []
    env: dict[str, Any] = {"_MISSING": _MISSING, "_set": object.__setattr__}
    for i, (name, (default, factory)) in enumerate(fields.items()):
        value = name
        if factory is not _MISSING:
            env[f"_f{i}"] = factory
            args.append(f"{name}=_MISSING")
            value = f"_f{i}() if {name} is _MISSING else {name}"
        elif default is not _MISSING:
            env[f"_d{i}"] = default
            args.append(f"{name}=_d{i}")
        else:
            args.append(name)
        body.append(f"  _set(self, {name!r}, {value})" if frozen else f"  self.{name} = {value}")
    src = f"def __init__({', '.join(args)}):\n" + ("\n".join(body) or "  pass") + "\n"
    exec(src, env)  # noqa: S102 - names come from the class's own annotations
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    return init


def _key_of(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    if not names:
        return lambda obj: ()
    get = operator.attrgetter(*names)
    if len(names) == 1:
        return lambda obj: (get(obj),)
    return get


def _methods(cls: type, names: tuple[str, ...], frozen: bool, slots: bool) -> dict[str, Any]:
    key = _key_of(names)

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{self.__class__.__qualname__}({inner})"

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return key(self) == key(other)
        return NotImplemented

    out: dict[str, Any] = {"__repr__": __repr__, "__eq__": __eq__}
    if not frozen:
        out["__hash__"] = None
        return out

    def __hash__(self: Any) -> int:
        return hash(key(self))

    owner: Any = cls  # (super's first argument; mypy narrows ``cls`` by the checks below)

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise _FrozenInstanceError(f"cannot assign to field {name!r}")
        super(owner, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise _FrozenInstanceError(f"cannot delete field {name!r}")
        super(owner, self).__delattr__(name)

    out.update(__hash__=__hash__, __setattr__=__setattr__, __delattr__=__delattr__)
    if slots:

        def __getstate__(self: Any) -> list[Any]:
            return [getattr(self, n) for n in names]

        def __setstate__(self: Any, state: list[Any]) -> None:
            for n, v in zip(names, state, strict=True):
                object.__setattr__(self, n, v)

        out.update(__getstate__=__getstate__, __setstate__=__setstate__)
    return out


def _with_slots(cls: type, fields: dict[str, tuple[Any, Any]]) -> type:
    """``cls`` made again with ``__slots__`` for its own fields (class defaults removed)."""
    inherited = {s for base in cls.__mro__[1:-1] for s in base.__dict__.get("__slots__", ())}
    body = dict(cls.__dict__)
    body["__slots__"] = tuple(n for n in fields if n not in inherited)
    for name in fields:
        body.pop(name, None)
    body.pop("__dict__", None)
    body.pop("__weakref__", None)
    new = type(cls)(cls.__name__, cls.__bases__, body)
    new.__qualname__ = cls.__qualname__
    return new


def _process(cls: type, frozen: bool, slots: bool) -> type:
    fields = _own_fields(cls)
    if slots:
        cls = _with_slots(cls, fields)
    else:
        for name, (default, _factory) in fields.items():
            if name in cls.__dict__:  # a field(...) marker: the default (or nothing) instead
                if default is _MISSING:
                    delattr(cls, name)
                else:
                    setattr(cls, name, default)
    setattr(cls, _FIELDS, fields)
    names = tuple(fields)
    own = cls.__dict__
    methods = {"__init__": _make_init(cls, fields, frozen)}
    methods.update(_methods(cls, names, frozen, slots))
    for name, fn in methods.items():
        if name not in own or (name == "__hash__" and own[name] is None and frozen):
            if fn is not None:
                fn.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, fn)
    if "__match_args__" not in own:
        setattr(cls, "__match_args__", names)  # noqa: B010 - a name mypy would refuse
    return cls


def _dataclass(cls: type | None = None, /, *, frozen: bool = False, slots: bool = False) -> Any:
    """The class decorator: ``@dataclass``, ``@dataclass(frozen=True, slots=True)``."""

    def wrap(c: type) -> type:
        return _process(c, frozen, slots)

    return wrap if cls is None else wrap(cls)


def _replace(obj: Any, /, **changes: Any) -> Any:
    """A copy of ``obj`` with ``changes`` (:func:`dataclasses.replace`, for classes made here
    or by the standard library)."""
    fields = getattr(type(obj), _FIELDS, None)
    if fields is None:
        import dataclasses

        return dataclasses.replace(obj, **changes)
    for name in fields:
        if name not in changes:
            changes[name] = getattr(obj, name)
    return obj.__class__(**changes)


if TYPE_CHECKING:
    from dataclasses import FrozenInstanceError, dataclass, field, replace
else:
    dataclass, field, replace = _dataclass, _field, _replace
    FrozenInstanceError = _FrozenInstanceError
