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
fields; unhashable unless frozen) and, for ``FrozenRecord``, immutability and a hash.  In place
of ``dataclasses.fields`` and ``dataclasses.replace``, this module's ``field_names`` and ``replace``
(also ``obj.__replace__``, the protocol of Python 3.13's ``copy.replace``) work on records and
dataclasses alike, so the code that walks a report generically (redaction, bundles) needs no
``dataclasses`` import on the probe's path.
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

    def __replace__(self, **changes: Any) -> Any:
        """A copy with ``changes`` applied (``copy.replace`` on Python 3.13+)."""
        values = {n: getattr(self, n) for n in type(self).__slots__}
        unknown = set(changes) - set(values)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {', '.join(sorted(map(repr, unknown)))}")
        values.update(changes)
        return type(self)(**values)


class FrozenRecord(Record):
    """A record whose fields cannot be set after construction (like ``frozen=True``); hashable."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of frozen {type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of frozen {type(self).__name__}")

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self._values())


def is_record(obj: Any) -> bool:
    """True for a record instance or a dataclass instance (not for the classes themselves)."""
    if isinstance(obj, Record):
        return True
    return not isinstance(obj, type) and hasattr(type(obj), "__dataclass_fields__")


def field_names(obj: Any) -> tuple[str, ...]:
    """The field names, in order, of a record or dataclass (instance or class)."""
    cls = obj if isinstance(obj, type) else type(obj)
    if issubclass(cls, Record):
        return tuple(cls.__slots__)
    if not hasattr(cls, "__dataclass_fields__"):
        raise TypeError(f"{cls.__name__} is neither a record nor a dataclass")
    import dataclasses  # only for a dataclass: records keep it off the probe's path

    return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]


def replace(obj: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` for records and dataclasses."""
    if isinstance(obj, Record):
        return obj.__replace__(**changes)
    import dataclasses

    return dataclasses.replace(obj, **changes)
