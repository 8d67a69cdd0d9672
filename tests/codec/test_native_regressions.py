"""Every input the native fuzzer (``make fuzz-native``) or a review found, replayed through
its route (native_targets.py): the core and the Python codec agree, the core is asked once
per conversion, and without the core the Python codec answers with a value or a
ConversionError. The inputs live in fuzz/regressions/native/, one file each, named for what
went wrong; the first byte picks the route (native_targets.ROUTES)."""

from __future__ import annotations

from pathlib import Path

import native_targets
import pytest

REGRESSIONS = Path(__file__).resolve().parents[2] / "fuzz" / "regressions" / "native"


@pytest.mark.parametrize("path", sorted(REGRESSIONS.iterdir()), ids=lambda p: p.name)
def test_what_was_found_stays_fixed(path: Path) -> None:
    native_targets.check(path.read_bytes())
