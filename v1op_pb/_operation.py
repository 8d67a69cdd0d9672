"""The generated Operation message class, under the name the package exports."""

from v1op.v1.operation_pb2 import Operation

__all__ = ["Operation"]
