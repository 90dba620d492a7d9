import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
EMIDEC = REPO.parent / "shared" / "data" / "emidec"


@pytest.fixture(scope="session")
def emidec_root() -> Path:
    if not (EMIDEC / "clinical.csv").is_file():
        pytest.skip(f"EMIDEC not found at {EMIDEC}; these tests use the shared copy laid beside the repo")
    return EMIDEC
