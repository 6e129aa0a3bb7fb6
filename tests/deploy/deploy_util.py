"""Shared by the deploy tests: the repository root, the binary under test, skips."""
import os
import shutil
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from ports import free_port  # noqa: E402,F401  (below the ephemeral range: see ports.py)


def ringkeeper_bin():
    """$RINGKEEPER_BIN, else build/ringkeeper; skips when neither exists."""
    path = os.environ.get("RINGKEEPER_BIN") or os.path.join(REPO, "build", "ringkeeper")
    if not os.access(path, os.X_OK):
        pytest.skip("no ringkeeper binary (set RINGKEEPER_BIN or build build/ringkeeper)")
    return path


def need_tools(*tools):
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        pytest.skip("%s missing (deploy/install-deps.sh --test installs it)" % ", ".join(missing))
