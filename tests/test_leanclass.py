"""tokmon.leanclass against the standard library's dataclasses: the same classes made both
ways behave the same (construction, defaults, equality, hashing, repr, frozen, slots,
inheritance, replace, pickling), and the report path's classes are made the lean way."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
import textwrap
from typing import Any, ClassVar

import pytest

from tokmon import leanclass

KINDS = [
    {},
    {"frozen": True},
    {"slots": True},
    {"frozen": True, "slots": True},
]


def _make(deco: Any, field: Any, **kw: Any) -> tuple[type, type]:
    """A base class and a subclass of it, decorated by ``deco`` (fields of both kinds)."""

    class Base:
        """A base."""

        tag: ClassVar[str] = "base"
        a: int
        b: str
        c: float = 1.5
        d: list[int] = field(default_factory=list)
        e: tuple[int, ...] = ()

        def total(self) -> float:
            return self.a + self.c

    Base = deco(**kw)(Base)

    class Sub(Base):
        """A subclass adding one field and overriding a default."""

        f: str | None = None
        c: float = 2.5

    Sub = deco(**kw)(Sub)
    return Base, Sub


@pytest.fixture(params=KINDS, ids=lambda k: "-".join(k) or "plain")
def pair(
    request: pytest.FixtureRequest,
) -> tuple[dict[str, Any], tuple[type, type], tuple[type, type]]:
    kw = request.param
    return (
        kw,
        _make(dataclasses.dataclass, dataclasses.field, **kw),
        _make(leanclass.dataclass, leanclass.field, **kw),
    )


def _fields(obj: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(obj, n) for n in names)


def test_construction_and_defaults(pair: Any) -> None:
    _kw, (SB, SS), (LB, LS) = pair
    names = ("a", "b", "c", "d", "e")
    for args, kwargs in [((1, "x"), {}), ((1, "x", 3.0), {"e": (1,)}), ((), {"b": "y", "a": 2})]:
        assert _fields(LB(*args, **kwargs), names) == _fields(SB(*args, **kwargs), names)
    sub_names = (*names, "f")
    assert _fields(LS(1, "x"), sub_names) == _fields(SS(1, "x"), sub_names)
    assert LS(1, "x").c == 2.5  # the subclass's default, in the base's position
    assert _fields(LS(1, "x", 0.5, [2], (3,), "z"), sub_names) == _fields(
        SS(1, "x", 0.5, [2], (3,), "z"), sub_names
    )
    # a default_factory gives each instance its own value
    one, two = LB(1, "x"), LB(1, "x")
    one.d.append(1)
    assert two.d == []
    for bad_args, bad_kw in [
        ((), {}),
        ((1,), {}),
        ((1, "x"), {"zz": 1}),
        ((1, "x", 1, [], (), 9), {}),
    ]:
        with pytest.raises(TypeError):
            SB(*bad_args, **bad_kw)
        with pytest.raises(TypeError):
            LB(*bad_args, **bad_kw)


def test_equality_hash_and_repr(pair: Any) -> None:
    kw, (SB, SS), (LB, LS) = pair
    s, lean = SB(1, "x", e=(1, 2)), LB(1, "x", e=(1, 2))
    assert repr(lean) == repr(s)
    assert repr(LS(1, "x")) == repr(SS(1, "x"))
    assert (LB(1, "x") == LB(1, "x")) is True
    assert (LB(1, "x") == LB(2, "x")) is False
    assert (LB(1, "x") == LS(1, "x")) is False  # another class: never equal, as dataclasses
    assert (SB(1, "x") == SS(1, "x")) is False
    assert LB(1, "x").__eq__((1, "x", 1.5, [], ())) is NotImplemented
    if kw.get("frozen"):
        h_lean = LB(1, "x", 2.0, [], (5,))
        with pytest.raises(TypeError):  # a list field is unhashable, both ways
            hash(h_lean)
        with pytest.raises(TypeError):
            hash(SB(1, "x", 2.0, [], (5,)))
        assert LS.__hash__ is not None
    else:
        with pytest.raises(TypeError):
            hash(LB(1, "x"))
        with pytest.raises(TypeError):
            hash(SB(1, "x"))


def test_hash_of_a_frozen_hashable_class_follows_its_fields() -> None:
    for deco in (dataclasses.dataclass, leanclass.dataclass):

        @deco(frozen=True, slots=True)
        class P:
            x: int
            y: str = "a"

        assert hash(P(1)) == hash(P(1, "a")) == hash((1, "a"))
        assert len({P(1), P(1), P(2)}) == 2


def test_frozen_and_slots(pair: Any) -> None:
    kw, (SB, _SS), (LB, LS) = pair
    lean, std = LB(1, "x"), SB(1, "x")
    if kw.get("frozen"):
        for obj, err in (
            (lean, leanclass.FrozenInstanceError),
            (std, dataclasses.FrozenInstanceError),
        ):
            with pytest.raises(err):
                obj.a = 2
            with pytest.raises(AttributeError):
                obj.a = 2
            with pytest.raises(AttributeError):
                del obj.b
        assert issubclass(leanclass.FrozenInstanceError, AttributeError)
    else:
        changed = LB(1, "x")
        changed.a = 5
        assert changed.a == 5
    if kw.get("slots"):
        assert not hasattr(lean, "__dict__") and not hasattr(std, "__dict__")
        assert LB.__slots__ == SB.__slots__
        assert "f" in LS.__slots__ and "a" not in LS.__slots__  # inherited slots not repeated
        with pytest.raises(AttributeError):
            lean.other = 1
    else:
        assert hasattr(lean, "__dict__")
        assert LB.c == 1.5 and SB.c == 1.5  # the default stays a class attribute
        assert "d" not in LB.__dict__ and "d" not in SB.__dict__  # a factory's marker goes
    assert LB.tag == "base" and "tag" not in leanclass.replace(lean).__class__.__match_args__
    assert LB.__match_args__ == SB.__match_args__
    assert lean.total() == std.total() == 2.5
    assert LB.__doc__ == "A base." and LB.__qualname__ == SB.__qualname__
    assert LB.__init__.__qualname__ == f"{LB.__qualname__}.__init__"


def test_replace(pair: Any) -> None:
    _kw, (SB, SS), (LB, LS) = pair
    lean = leanclass.replace(LS(1, "x", f="q"), b="y")
    std = dataclasses.replace(SS(1, "x", f="q"), b="y")
    assert type(lean) is LS
    assert repr(lean) == repr(std)
    with pytest.raises(TypeError):
        leanclass.replace(LB(1, "x"), nope=1)
    # standard dataclasses go through dataclasses.replace
    assert leanclass.replace(SB(1, "x"), a=3) == SB(3, "x")


def test_pickle_round_trip(pair: Any) -> None:
    kw, _std, (_LB, _LS) = pair
    # pickling needs module-level classes: the report rows are frozen, slotted lean classes
    from tokmon.core.reader import FileState
    from tokmon.core.rows import PeriodRow, Totals, Usage

    row = PeriodRow("date", "2026-01-01", Usage(1, 2, 3, 4, 0.5), ("m",))
    for obj in (row, Totals(1, 2, 3, 4, 1.25), FileState(1, 2, 3, 4, 5, "fp")):
        back = pickle.loads(pickle.dumps(obj))
        assert back == obj and type(back) is type(obj)
    assert kw is not None


def test_errors_at_class_creation() -> None:
    for deco, field in (
        (dataclasses.dataclass, dataclasses.field),
        (leanclass.dataclass, leanclass.field),
    ):
        with pytest.raises(ValueError):

            @deco
            class Mutable:
                items: list[int] = []  # noqa: RUF012 - the error under test

        with pytest.raises(TypeError):

            @deco
            class Order:
                a: int = 1
                b: int

        with pytest.raises(ValueError):
            field(default=1, default_factory=int)


def test_methods_a_class_defines_are_kept() -> None:
    @leanclass.dataclass(frozen=True)
    class Own:
        x: int

        def __repr__(self) -> str:
            return "own"

    assert repr(Own(1)) == "own"
    assert Own(1) == Own(1)


def test_the_report_path_makes_no_standard_dataclass(tmp_path: Any) -> None:
    """The classes a cold report imports are lean (no ``__dataclass_fields__``); with the
    standard decorator back in any of them, this fails."""
    code = textwrap.dedent(
        """
        import dataclasses, sys
        made = []
        real = dataclasses._process_class
        def spy(cls, *a, **k):
            made.append(f"{cls.__module__}.{cls.__qualname__}")
            return real(cls, *a, **k)
        dataclasses._process_class = spy
        import tokmon.cli.main, tokmon.cli.reports, tokmon.cli.render, tokmon.core.engine
        import tokmon.core.rows, tokmon.core.rollups, tokmon.core.scan, tokmon.config
        from tokmon.core.rows import PeriodRow
        assert hasattr(PeriodRow, "__leanclass_fields__"), "not lean"
        print(",".join(m for m in made if m.startswith("tokmon")))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == ""
