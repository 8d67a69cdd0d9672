"""V1Operation: the documented client's model, backed by a real Operation message.

Same names as eval-studio-client's ``V1Operation`` (``from_json``, ``to_json``, ``to_dict``,
``from_dict`` and the snake_case attributes), but every value lives in the protobuf message,
so a round trip keeps the output-only fields, nanoseconds, and typed Any and Status.
"""

from __future__ import annotations

import datetime
import functools
import pprint
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, Generic, ParamSpec, TypeVar, overload

from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2

from ._any import pack
from ._codec import Codec
from ._datetime import DatetimeWithNanoseconds, timestamp_pb
from ._errors import ConversionError
from ._json import from_dict, from_json, to_dict, to_json
from ._operation import Operation
from ._registry import TypeRegistry

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

__all__ = ["V1Operation"]

T = TypeVar("T")
M = TypeVar("M", bound=Message)
P = ParamSpec("P")
R = TypeVar("R")


class _Field(Generic[T]):
    """One attribute of V1Operation, read from and written to the backing message; reads
    give a T (so a type checker knows ``model.name`` is a ``str | None``)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.json_name = Operation.DESCRIPTOR.fields_by_name[name].json_name

    @overload
    def __get__(self, obj: None, owner: type) -> Self: ...
    @overload
    def __get__(self, obj: V1Operation, owner: type) -> T: ...
    def __get__(self, obj: V1Operation | None, owner: type) -> Self | T:
        if obj is None:
            return self
        return self.read(obj._message)

    def __set__(self, obj: V1Operation, value: Any) -> None:
        # The stubs take only literal field names; this one is known at run time.
        message: Message = obj._message
        if value is None:
            message.ClearField(self.name)
            return
        try:
            self.write(obj._message, value, obj._registry)
        except ConversionError as e:
            e.prepend(self.json_name)
            raise

    def read(self, message: Operation) -> T:
        raise NotImplementedError

    def write(self, message: Operation, value: Any, registry: TypeRegistry | None) -> None:
        raise NotImplementedError


def _has(message: Message, name: str) -> bool:
    # Typed Message: the stubs of Operation take only literal field names.
    return message.HasField(name)


class _String(_Field[str | None]):
    """A string attribute; an empty string reads as None, as in the documented model."""

    def read(self, message: Operation) -> str | None:
        return getattr(message, self.name) or None

    def write(self, message: Operation, value: Any, registry: TypeRegistry | None) -> None:
        if not isinstance(value, str):
            raise TypeError(f"{self.name} must be a str, got {type(value).__name__}")
        setattr(message, self.name, value)


class _Bool(_Field[bool]):
    def read(self, message: Operation) -> bool:
        value: bool = getattr(message, self.name)
        return value

    def write(self, message: Operation, value: Any, registry: TypeRegistry | None) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"{self.name} must be a bool, got {type(value).__name__}")
        setattr(message, self.name, value)


class _Time(_Field[DatetimeWithNanoseconds | None]):
    """A Timestamp, read as a DatetimeWithNanoseconds (a datetime that keeps nanoseconds).

    Takes an aware datetime, a Timestamp message, or RFC 3339 text.
    """

    def read(self, message: Operation) -> DatetimeWithNanoseconds | None:
        if not _has(message, self.name):
            return None
        return DatetimeWithNanoseconds.from_timestamp_pb(getattr(message, self.name))

    def write(self, message: Operation, value: Any, registry: TypeRegistry | None) -> None:
        if isinstance(value, datetime.datetime):
            stamp = timestamp_pb(value)
        elif isinstance(value, timestamp_pb2.Timestamp):
            stamp = value
        elif isinstance(value, str):
            stamp = Codec().decode(value, timestamp_pb2.Timestamp)
        else:
            raise TypeError(
                f"{self.name} must be a datetime, a Timestamp or RFC 3339 text, "
                f"got {type(value).__name__}"
            )
        # Through the codec's check, so that a value JSON cannot carry is refused now.
        Codec().encode(stamp)
        getattr(message, self.name).CopyFrom(stamp)


class _Message(_Field[M | None]):
    """A message attribute (Any or Status): the live sub-message, or None when unset.

    Takes the message itself, its JSON form as a dict, or (for an Any) any other message,
    which is packed.
    """

    message_type: ClassVar[type[Message]]

    def read(self, message: Operation) -> M | None:
        if not _has(message, self.name):
            return None
        value: M = getattr(message, self.name)
        return value

    def write(self, message: Operation, value: Any, registry: TypeRegistry | None) -> None:
        if isinstance(value, self.message_type):
            new = value
        elif isinstance(value, dict):
            new = Codec(registry).decode(value, self.message_type)
        elif self.message_type is any_pb2.Any and isinstance(value, Message):
            new = pack(value)
        else:
            raise TypeError(
                f"{self.name} must be a {self.message_type.DESCRIPTOR.full_name} or its JSON "
                f"form as a dict, got {type(value).__name__}"
            )
        getattr(message, self.name).CopyFrom(new)


class _Any(_Message[any_pb2.Any]):
    message_type = any_pb2.Any


class _Status(_Message[status_pb2.Status]):
    message_type = status_pb2.Status


class _hybridmethod(Generic[P, R]):
    """A method that also works on the class, where it acts on an empty instance.

    The documented example calls ``V1Operation.to_json()`` on the class; here that prints
    the JSON of an empty operation instead of failing. Typed through: on the class and on an
    instance it is the method without ``self`` (``to_json() -> str``).
    """

    def __init__(self, func: Callable[Concatenate[V1Operation, P], R]) -> None:
        self.func = func
        functools.update_wrapper(self, func)  # type: ignore[arg-type]  # an object, not a function

    def __get__(self, obj: V1Operation | None, owner: type[V1Operation]) -> Callable[P, R]:
        return functools.partial(self.func, obj if obj is not None else owner())


class V1Operation:
    """This resource represents a long-running operation that is the result of a network
    API call.

    Attributes use the documented Python names. Strings read None when empty, times read
    as ``DatetimeWithNanoseconds``, ``metadata`` and ``response`` as
    ``google.protobuf.Any``, ``error`` as ``google.rpc.Status``; each is None when unset.
    """

    __slots__ = ("_message", "_registry")

    name = _String()
    create_time = _Time()
    creator = _String()
    update_time = _Time()
    updater = _String()
    delete_time = _Time()
    deleter = _String()
    metadata = _Any()
    done = _Bool()
    error = _Status()
    response = _Any()
    seen_by_creator_time = _Time()

    _ALIASES: ClassVar[dict[str, str]] = {
        f.json_name: f.name for f in Operation.DESCRIPTOR.fields if f.json_name != f.name
    }

    def __init__(self, *, registry: TypeRegistry | None = None, **fields: Any) -> None:
        """Build from attribute values by Python name (``create_time``) or JSON name
        (``createTime``), as the documented model accepts both."""
        self._message = Operation()
        self._registry = registry
        for key, value in fields.items():
            name = self._ALIASES.get(key, key)
            if not isinstance(getattr(type(self), name, None), _Field):
                raise TypeError(f"V1Operation has no field {key!r}")
            setattr(self, name, value)

    @classmethod
    def from_proto(cls, message: Operation, *, registry: TypeRegistry | None = None) -> V1Operation:
        """A V1Operation holding a copy of the message."""
        if not isinstance(message, Operation):
            raise TypeError(f"expected a {Operation.DESCRIPTOR.full_name}, got {type(message)}")
        new = cls(registry=registry)
        new._message.CopyFrom(message)
        return new

    def to_proto(self) -> Operation:
        """A copy of the backing Operation message."""
        copy = Operation()
        copy.CopyFrom(self._message)
        return copy

    @classmethod
    def from_json(
        cls,
        json_str: str | bytes,
        *,
        registry: TypeRegistry | None = None,
        ignore_unknown_fields: bool = False,
    ) -> V1Operation:
        """Create an instance of V1Operation from a JSON string."""
        message = from_json(
            json_str, registry=registry, ignore_unknown_fields=ignore_unknown_fields
        )
        return cls._wrap(message, registry)

    @classmethod
    def from_dict(
        cls,
        obj: dict[str, Any],
        *,
        registry: TypeRegistry | None = None,
        ignore_unknown_fields: bool = False,
    ) -> V1Operation:
        """Create an instance of V1Operation from a dict (camelCase or snake_case keys)."""
        message = from_dict(obj, registry=registry, ignore_unknown_fields=ignore_unknown_fields)
        return cls._wrap(message, registry)

    @_hybridmethod
    def to_json(self, *, omit_output_only: bool = False, indent: int | None = None) -> str:
        """The JSON string of the operation, output-only fields included unless
        ``omit_output_only=True`` (the request form)."""
        return to_json(
            self._message,
            registry=self._registry,
            omit_output_only=omit_output_only,
            indent=indent,
        )

    @_hybridmethod
    def to_dict(self, *, omit_output_only: bool = False) -> dict[str, Any]:
        """The JSON value of the operation as a dict with camelCase keys."""
        return to_dict(self._message, registry=self._registry, omit_output_only=omit_output_only)

    def to_str(self) -> str:
        """The dict form, pretty-printed."""
        return pprint.pformat(self.to_dict())

    @classmethod
    def _wrap(cls, message: Operation, registry: TypeRegistry | None) -> V1Operation:
        new = cls.__new__(cls)
        new._message = message
        new._registry = registry
        return new

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, V1Operation):
            return NotImplemented
        return self._message == other._message

    __hash__ = None  # type: ignore[assignment]  # mutable, like the message it wraps

    def __repr__(self) -> str:
        return f"V1Operation.from_json({self.to_json()!r})"
