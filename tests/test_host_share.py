"""The suite's lock under pytest -n: tests marked ``alone`` never overlap another test, the others overlap."""

from __future__ import annotations

import fcntl
import threading
import time
from pathlib import Path

import pytest

from conftest import HostShare, host_share


def _can_take(base, mode: int) -> bool:
    with open(f"{base}.lock", "a") as lock:
        try:
            fcntl.flock(lock, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(lock, fcntl.LOCK_UN)
        return True


@pytest.mark.parametrize("alone", [False, True])
def test_a_test_alone_excludes_every_other_and_sharers_exclude_only_it(tmp_path, alone):
    base = tmp_path / "run"
    with host_share(base, alone):
        assert _can_take(base, fcntl.LOCK_SH) is not alone  # another sharing test
        assert not _can_take(base, fcntl.LOCK_EX)  # a test alone waits for whoever holds the host
    assert _can_take(base, fcntl.LOCK_EX)


def test_a_waiting_test_alone_goes_before_new_sharers(tmp_path):
    """Without the turnstile, sharers arriving one after another could keep a test alone waiting forever."""
    base, order = tmp_path / "run", []

    def run(alone: bool, name: str) -> None:
        with host_share(base, alone):
            order.append(f"{name} in")
            time.sleep(0.1)
            order.append(f"{name} out")

    with host_share(base, False):
        waiting = threading.Thread(target=run, args=(True, "alone"))
        waiting.start()
        time.sleep(0.2)  # it now waits for this sharer, holding the turnstile
        late = threading.Thread(target=run, args=(False, "sharer"))
        late.start()
        time.sleep(0.2)
        assert order == []
    waiting.join(5)
    late.join(5)
    assert order == ["alone in", "alone out", "sharer in", "sharer out"]


def test_a_worker_keeps_the_host_from_one_test_alone_to_the_next_and_then_shares_it(tmp_path):
    base = tmp_path / "run"
    share = HostShare(base)
    share.enter(alone=True)
    share.leave(keep=True)  # the next test on this worker is alone too
    assert not _can_take(base, fcntl.LOCK_SH)  # no sharer slips in between
    share.enter(alone=True)  # already held: no wait (waiting on itself would deadlock)
    share.leave(keep=False)
    assert _can_take(base, fcntl.LOCK_EX)
    share.enter(alone=True)
    share.leave(keep=True)
    share.enter(alone=False)  # the next test shares: the worker lets go of the host and takes a share
    assert _can_take(base, fcntl.LOCK_SH) and not _can_take(base, fcntl.LOCK_EX)
    share.close()
    assert _can_take(base, fcntl.LOCK_EX)


def test_a_run_stopped_by_a_failure_alone_ends_instead_of_waiting_forever(pytester):
    """-x with the failure in a block of tests alone: the worker must not keep the host for a next test it will
    never run, or the other worker, waiting for its share, never ends and neither does the run (seen: a hang)."""
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile("""
        import time
        import pytest

        @pytest.mark.alone
        def test_fails_alone():
            time.sleep(0.5)
            assert False

        @pytest.mark.alone
        @pytest.mark.parametrize("i", range(2))
        def test_next_alone(i):
            time.sleep(0.5)

        @pytest.mark.parametrize("i", range(6))
        def test_shares(i):
            time.sleep(0.2)
    """)
    pytester.makeini("[pytest]\nmarkers = alone: judges wall-clock time\n")
    result = pytester.runpytest_subprocess("-n", "2", "-x", "-p", "no:cacheprovider", timeout=30)
    assert "stopping after 1 failures" in result.stdout.str() and result.ret == pytest.ExitCode.INTERRUPTED
