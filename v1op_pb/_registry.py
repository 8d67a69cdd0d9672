"""Resolving Any type URLs to message classes."""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import threading
import types
from collections.abc import Iterable
from importlib.machinery import ModuleSpec

# Imported for their side effect: every well-known type and every google.rpc error detail is
# in the default descriptor pool before any Any is resolved, whatever else the process has
# imported. json_format alone cannot resolve, say, Int64Value until wrappers_pb2 is imported.
from google.longrunning import operations_proto_pb2  # noqa: F401
from google.protobuf import (
    any_pb2,  # noqa: F401
    api_pb2,  # noqa: F401
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,  # noqa: F401
    empty_pb2,  # noqa: F401
    field_mask_pb2,  # noqa: F401
    message_factory,
    source_context_pb2,  # noqa: F401
    struct_pb2,  # noqa: F401
    timestamp_pb2,  # noqa: F401
    type_pb2,  # noqa: F401
    wrappers_pb2,  # noqa: F401
)
from google.protobuf.descriptor import Descriptor, FileDescriptor
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, error_details_pb2, http_pb2, status_pb2  # noqa: F401

from ._errors import excerpt

__all__ = [
    "TypeRegistry",
    "UnknownTypeError",
    "default_registry",
    "type_name_of",
    "unknown_type_of",
]


class UnknownTypeError(LookupError):
    """No message type is known for a type URL (``type_url``; empty where none was given)."""

    def __init__(self, message: str, type_url: str = "") -> None:
        super().__init__(message)
        self.type_url = type_url

    def __reduce__(self) -> tuple[type[UnknownTypeError], tuple[str, str]]:
        return (UnknownTypeError, (str(self), self.type_url))


def unknown_type_of(error: BaseException) -> str | None:
    """The full name of the type whose URL nobody registered, when that is what ``error``
    (a ConversionError, or the UnknownTypeError itself) is about; None otherwise. Clients
    that can learn types (from server reflection) retry with it."""
    cause = error if isinstance(error, UnknownTypeError) else error.__cause__
    if isinstance(cause, UnknownTypeError) and cause.type_url:
        return type_name_of(cause.type_url) or None
    return None


def type_name_of(type_url: str) -> str:
    """The full message name in a type URL: its last path segment."""
    return type_url.rpartition("/")[2]


class TypeRegistry:
    """Maps Any type URLs to message classes.

    A type is looked up, in order, among the message classes registered with ``register``,
    the files loaded with ``add_descriptor_set``, and (unless ``use_default_pool=False``)
    the default descriptor pool, which holds every generated module the process imported and
    every well-known type and google.rpc error detail.
    """

    def __init__(self, *, use_default_pool: bool = True) -> None:
        self._classes: dict[str, type[Message]] = {}
        # Type URL -> class, filled by the codec's Any units, which resolve the same few URLs
        # over and over; emptied whenever a registration may change an answer.
        self.by_url: dict[str, type[Message]] = {}
        self._pools: list[descriptor_pool.DescriptorPool] = []
        self._use_default_pool = use_default_pool
        self._lock = threading.Lock()

    def register(self, *items: type[Message] | types.ModuleType | Descriptor) -> TypeRegistry:
        """Register message classes, generated ``_pb2`` modules, or message descriptors.

        A module registers every message it defines, nested ones included. Returns the
        registry, so calls chain.
        """
        found: dict[str, type[Message]] = {}
        for item in items:
            if isinstance(item, types.ModuleType):
                file = getattr(item, "DESCRIPTOR", None)
                if not isinstance(file, FileDescriptor):
                    raise TypeError(f"module {item.__name__} is not a generated _pb2 module")
                for descriptor in file.message_types_by_name.values():
                    _collect(descriptor, found)
            elif isinstance(item, Descriptor):
                _collect(item, found)
            elif isinstance(item, type) and issubclass(item, Message):
                found[item.DESCRIPTOR.full_name] = item
            else:
                raise TypeError(
                    f"cannot register {item!r}: expected a message class, a generated "
                    "_pb2 module or a message Descriptor"
                )
        with self._lock:
            self._classes.update(found)
            self.by_url.clear()
        return self

    def register_module(self, name: str) -> TypeRegistry:
        """Import a generated module by dotted name and register its messages."""
        return self.register(importlib.import_module(name))

    def add_descriptor_set(
        self, source: bytes | str | os.PathLike[str] | descriptor_pb2.FileDescriptorSet
    ) -> list[str]:
        """Load a FileDescriptorSet (``protoc --descriptor_set_out``), a path or its bytes.

        Files the set imports but does not contain (``protoc`` without ``--include_imports``)
        are taken from the default pool when it has them. Returns the full names of the
        message types the set defines.
        """
        if isinstance(source, descriptor_pb2.FileDescriptorSet):
            file_set = source
        else:
            data = source if isinstance(source, bytes) else _read(source)
            file_set = descriptor_pb2.FileDescriptorSet()
            try:
                file_set.ParseFromString(data)
            except DecodeError as e:
                raise ValueError(f"not a serialized FileDescriptorSet: {e}") from e
        pool = descriptor_pool.DescriptorPool()
        by_name = {f.name: f for f in file_set.file}
        added: set[str] = set()
        shared: list[str] = []  # files the default pool has too

        def add(name: str) -> None:
            if name in added:
                return
            added.add(name)
            proto = by_name.get(name)
            if proto is None:
                proto = _file_from_default_pool(name)
            for dependency in proto.dependency:
                add(dependency)
            try:
                pool.Add(proto)
            except (TypeError, ValueError, KeyError) as e:
                raise ValueError(f"descriptor set file {name!r} does not build: {e}") from e
            if _in_default_pool(name):
                shared.append(name)

        for name in by_name:
            add(name)
        # Types of files the process already has generated code for (the well-known types,
        # google.rpc, ...) resolve to those generated classes, not to look-alikes built
        # from the set: isinstance checks and equality with the real classes keep working.
        default = descriptor_pool.Default()
        generated: dict[str, type[Message]] = {}
        for name in shared:
            for descriptor in default.FindFileByName(name).message_types_by_name.values():
                _collect(descriptor, generated)
        defined: list[str] = []
        for file in file_set.file:
            file_descriptor = pool.FindFileByName(file.name)
            for descriptor in file_descriptor.message_types_by_name.values():
                defined.extend(_names(descriptor))
        with self._lock:
            self._pools.append(pool)
            for full_name, cls in generated.items():
                self._classes.setdefault(full_name, cls)
            self.by_url.clear()
        return defined

    def resolve(self, type_url: str) -> type[Message]:
        """The message class for a type URL; UnknownTypeError when none is known."""
        full_name = type_name_of(type_url)
        cls = self._classes.get(full_name)
        if cls is not None:
            return cls
        pools = list(self._pools)
        if self._use_default_pool:
            pools.append(descriptor_pool.Default())
        for pool in pools:
            try:
                descriptor = pool.FindMessageTypeByName(full_name)
            except (KeyError, TypeError, UnicodeError):  # TypeError: not encodable as UTF-8
                continue
            cls = message_factory.GetMessageClass(descriptor)
            with self._lock:
                cls = self._classes.setdefault(full_name, cls)
            return cls
        if self._use_default_pool and _import_shipped_types(full_name):
            return self.resolve(type_url)
        raise UnknownTypeError(
            f"no message type {excerpt(full_name)} is known for type URL {excerpt(type_url)}; "
            "import its "
            "generated module, or register it with TypeRegistry.register(<module or class>) "
            "or TypeRegistry.add_descriptor_set(<file>) and pass registry=...",
            type_url,
        )

    def descriptor_pools(self) -> list[descriptor_pool.DescriptorPool]:
        """The pools this registry looks types up in, in order: those of the descriptor
        sets it loaded, then (unless ``use_default_pool=False``) the default pool. Classes
        given to ``register`` are in the default pool when generated code defines them."""
        pools = list(self._pools)
        if self._use_default_pool:
            pools.append(descriptor_pool.Default())
        return pools

    def __contains__(self, type_url: str) -> bool:
        try:
            self.resolve(type_url)
        except UnknownTypeError:
            return False
        return True

    def descriptor_pool(self) -> _RegistryPool:
        """A stand-in for a DescriptorPool that finds every type this registry resolves, for
        text_format (which looks types up with FindMessageTypeByName only)."""
        return _RegistryPool(self)


class _RegistryPool:
    def __init__(self, registry: TypeRegistry) -> None:
        self._registry = registry

    # The name and behaviour of DescriptorPool.FindMessageTypeByName, which text_format calls.
    def FindMessageTypeByName(self, full_name: str) -> Descriptor:
        try:
            descriptor: Descriptor = self._registry.resolve(full_name).DESCRIPTOR  # type: ignore[assignment]
            return descriptor
        except UnknownTypeError as e:
            raise KeyError(full_name) from e


# The generated package this distribution ships beside v1op_pb (gen/v1op): its types, the
# example payloads included, are known without an import, as a user of the shipped examples
# expects. Each of its proto packages is imported once, on the first miss that names it.
_SHIPPED_ROOT = "v1op"
_shipped_imported: set[str] = set()
_shipped_lock = threading.Lock()


def _import_shipped_types(full_name: str) -> bool:
    """Import the generated modules of the shipped proto package that would define
    ``full_name``; True when that imported anything new (so a second look may find it)."""
    parts = full_name.split(".")[:-1]
    if len(parts) < 2 or parts[0] != _SHIPPED_ROOT or not all(p.isidentifier() for p in parts):
        return False
    with _shipped_lock:
        package, spec = _deepest_shipped_package(parts)
        if spec is None or package in _shipped_imported:
            return False
        # Only packages that exist are remembered: names that callers make up (type URLs
        # come from the wire) cost a few lookups each and never grow this set.
        _shipped_imported.add(package)
        assert spec.submodule_search_locations is not None
        modules = [
            f"{package}.{info.name}"
            for info in pkgutil.iter_modules(spec.submodule_search_locations)
            if info.name.endswith("_pb2")
        ]
        for module in modules:
            importlib.import_module(module)
        return bool(modules)


def _deepest_shipped_package(parts: list[str]) -> tuple[str, ModuleSpec | None]:
    """The longest leading run of ``parts`` that is a package of the shipped tree (a nested
    message's name has its parents between the package and its own name), found from the
    root down: importlib imports each parent of a dotted name recursively, and a name of
    hundreds of parts would run out of recursion."""
    package, found = "", None
    for part in parts:
        name = f"{package}.{part}" if package else part
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or spec.submodule_search_locations is None:
            break
        package, found = name, spec
    return package, found


def _collect(descriptor: Descriptor, found: dict[str, type[Message]]) -> None:
    if descriptor.GetOptions().map_entry:
        return
    found[descriptor.full_name] = message_factory.GetMessageClass(descriptor)
    for nested in descriptor.nested_types:
        _collect(nested, found)


def _names(descriptor: Descriptor) -> Iterable[str]:
    if descriptor.GetOptions().map_entry:
        return
    yield descriptor.full_name
    for nested in descriptor.nested_types:
        yield from _names(nested)


def _in_default_pool(name: str) -> bool:
    try:
        descriptor_pool.Default().FindFileByName(name)
    except KeyError:
        return False
    return True


def _read(path: str | os.PathLike[str]) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _file_from_default_pool(name: str) -> descriptor_pb2.FileDescriptorProto:
    try:
        file = descriptor_pool.Default().FindFileByName(name)
    except KeyError as e:
        raise ValueError(
            f"the descriptor set imports {name!r} but neither contains it nor is it loaded; "
            "build the set with protoc --include_imports"
        ) from e
    proto = descriptor_pb2.FileDescriptorProto()
    file.CopyToProto(proto)
    return proto


default_registry = TypeRegistry()
"""The registry every conversion uses when it is given none."""
