"""A per-test time limit for kazoo's suite (pytest-timeout is not installed).

Loaded with `-p pytest_timeout_alarm`. SIGALRM interrupts the main thread when one
test (setup + call + teardown) runs longer than KAZOO_TEST_TIMEOUT seconds (default
60); the test fails with TestTimedOut and the run goes on. The alarm is re-armed each
time it fires, so a teardown that hangs too (kazoo's client.stop() waiting for a
connection thread that never ends) is interrupted as well.
"""
import os
import signal

import pytest

LIMIT = int(os.environ.get("KAZOO_TEST_TIMEOUT", "60"))


class TestTimedOut(BaseException):  # not Exception: kazoo's retry loops must not eat it
    pass


def _alarm(signum, frame):
    signal.alarm(LIMIT)
    raise TestTimedOut("test exceeded %ds (KAZOO_TEST_TIMEOUT)" % LIMIT)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
