"""The ``v1op`` command: ``convert`` (``convert``), ``serve`` and ``gateway`` (``serve``),
``get``, ``list``, ``wait`` and ``progress`` (``operations``), ``create``, ``update``,
``finalize``, ``abort``, ``delete`` and ``mark-seen`` (``operator``), ``completion``."""

from .main import main

__all__ = ["main"]
