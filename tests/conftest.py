"""Shared test set-up: tests import their helpers (oprun, ...) from this folder."""

import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)


_CACHE = Path(tempfile.mkdtemp(prefix="torchonnx-test-cache-"))


def pytest_configure(config: object) -> None:
    # codegen run by tests keeps its cache apart from the developer's
    os.environ.setdefault("TORCHONNX_CACHE_DIR", str(_CACHE))


def pytest_unconfigure(config: object) -> None:
    shutil.rmtree(_CACHE, ignore_errors=True)
