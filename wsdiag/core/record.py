"""Slotted record classes for the probe's hot path: dataclass behaviour without its start-up cost.

``@dataclass`` compiles an ``__init__``, ``__repr__`` and ``__eq__`` (and for frozen classes
``__setattr__``, ``__delattr__``, ``__hash__``) with ``exec`` when the class is created, about
0.3-1.5 ms per class on the benchmark machine; a default probe created 31 of them at import
(~20 ms, measured by timing ``dataclasses._process_class``).  A record declares its fields in
``__slots__`` (in order) and their defaults in ``_defaults``; the methods below are shared, so
creating the class costs what any class costs.

Behaviour kept from the dataclasses these replace: positional or keyword construction in
field order, defaults (a ``Factory`` default is called per instance, like
``field(default_factory=...)``), ``repr`` (``Name(a=1, b='x')``), ``==`` (same class, equal
fields; unhashable unless frozen) and, for ``FrozenRecord``, immutability and a hash.  Not kept:
``dataclasses.fields``/``replace``/``asdict`` (records are never walked generically; report
records that are stay dataclasses).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar


class Factory:
    """A default made fresh for every instance (``Factory(list)``)."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]):
        self.make = make


class Record:
    __slots__: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names = type(self).__slots__
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}() takes {len(names)} arguments, got {len(args)}")
        put = object.__setattr__
        for name, value in zip(names, args):
            put(self, name, value)
        defaults = self._defaults
        for name in names[len(args):]:
            if name in kwargs:
                value = kwargs.pop(name)
            elif name in defaults:
                value = defaults[name]
                if type(value) is Factory:
                    value = value.make()
            else:
                raise TypeError(f"{type(self).__name__}() missing argument {name!r}")
            put(self, name, value)
        if kwargs:
            raise TypeError(f"{type(self).__name__}() got unexpected argument(s) {', '.join(map(repr, kwargs))}")

    def _values(self) -> tuple:
        return tuple(getattr(self, n) for n in type(self).__slots__)

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in type(self).__slots__)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # like a mutable dataclass with eq


class FrozenRecord(Record):
    """A record whose fields cannot be set after construction (like ``frozen=True``); hashable."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of frozen {type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of frozen {type(self).__name__}")

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self._values())
