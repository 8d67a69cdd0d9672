"""v1op_pb: a protobuf-native binding for the long-running Operation resource.

The public API is what ``__all__`` lists; every other module is internal.
"""

from ._any import pack, unpack
from ._errors import ConversionError
from ._json import from_dict, from_json, to_dict, to_json
from ._jsontext import MAX_DEPTH
from ._operation import Operation
from ._registry import TypeRegistry, UnknownTypeError, default_registry
from ._status import Status, make_status, status_details

__all__ = sorted(
    [
        "MAX_DEPTH",
        "ConversionError",
        "Operation",
        "Status",
        "TypeRegistry",
        "UnknownTypeError",
        "default_registry",
        "from_dict",
        "from_json",
        "make_status",
        "pack",
        "status_details",
        "to_dict",
        "to_json",
        "unpack",
    ]
)
