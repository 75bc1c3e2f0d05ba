import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def golden():
    """Compare text with tests/render/golden/<name>; GRADTOOL_UPDATE_GOLDEN=1 rewrites it."""
    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if os.environ.get("GRADTOOL_UPDATE_GOLDEN") == "1":
            path.write_text(text, encoding="utf-8")
            return
        if not path.exists():
            pytest.fail(f"golden file {path} is missing: rerun with GRADTOOL_UPDATE_GOLDEN=1")
        assert text == path.read_text(encoding="utf-8"), (
            f"{name} differs from its golden file; if the change is intended, rerun with "
            "GRADTOOL_UPDATE_GOLDEN=1 and review the diff")
    return check
