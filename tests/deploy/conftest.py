"""pytest setup for tests/deploy: the helpers beside this file are importable."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
