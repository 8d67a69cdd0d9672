"""The ``v1op`` command: ``convert`` (``convert``), ``serve`` and ``gateway`` (``serve``),
``get``, ``list`` and ``wait`` (``operations``)."""

from .main import main

__all__ = ["main"]
