"""Shared test set-up: tests import their helpers (oprun, ...) from this folder."""

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)


def pytest_configure(config: object) -> None:
    # codegen run by tests keeps its schema cache apart from the developer's
    import os
    import tempfile

    os.environ.setdefault("TORCHONNX_CACHE_DIR", tempfile.mkdtemp(prefix="torchonnx-test-cache-"))
