"""v1op_pb: a protobuf-native binding for the long-running Operation resource.

The public API is what ``__all__`` lists; every other module is internal.
"""

from ._any import pack, unpack
from ._codec import MAX_DEPTH, native_stats
from ._datetime import DatetimeWithNanoseconds
from ._errors import ConversionError
from ._formats import from_binary, from_text, to_binary, to_text
from ._json import from_dict, from_json, to_dict, to_json
from ._operation import Operation
from ._registry import TypeRegistry, UnknownTypeError, default_registry
from ._status import Status, make_status, status_details
from ._v1operation import V1Operation

__all__ = [
    "MAX_DEPTH",
    "ConversionError",
    "DatetimeWithNanoseconds",
    "Operation",
    "Status",
    "TypeRegistry",
    "UnknownTypeError",
    "V1Operation",
    "default_registry",
    "from_binary",
    "from_dict",
    "from_json",
    "from_text",
    "make_status",
    "native_stats",
    "pack",
    "status_details",
    "to_binary",
    "to_dict",
    "to_json",
    "to_text",
    "unpack",
]
