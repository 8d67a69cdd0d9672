"""The proto3 JSON mapping for any message type: the ``Codec`` (``codec``), the Python
source it compiles per type (``decode`` and ``encode``, sharing ``compile``), the
well-known-type units (``wkt``), scalar rules (``scalars``) and the JSON text layer over
orjson (``jsontext``)."""

from .codec import Codec, is_output_only, native_enabled, native_stats, set_native
from .jsontext import MAX_DEPTH, dumps, loads, too_deep

__all__ = [
    "MAX_DEPTH",
    "Codec",
    "dumps",
    "is_output_only",
    "loads",
    "native_enabled",
    "native_stats",
    "set_native",
    "too_deep",
]
