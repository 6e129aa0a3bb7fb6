"""Stand-in for the `mock` backport (Debian python3-mock) kazoo's tests import:
the standard library's unittest.mock has the same API. run.sh puts compat/ on the path
only when `import mock` fails."""
from unittest.mock import *  # noqa: F401,F403
from unittest.mock import __all__  # noqa: F401
