"""The supervisor's restart policy: back-off, a fresh count after a stable run, giving up."""

from __future__ import annotations

import signal

from fp_local.supervisor import GIVE_UP_AFTER, MAX_DELAY_S, STABLE_AFTER_S, RestartPolicy, describe_exit


def test_quick_deaths_back_off_then_give_up():
    policy = RestartPolicy()
    delays = [policy.died(ran_s=2.0) for _ in range(GIVE_UP_AFTER)]
    assert delays[:-1] == [min(MAX_DELAY_S, 2.0**i) for i in range(GIVE_UP_AFTER - 1)]
    assert delays[-1] is None  # keeps dying: reported, not restarted forever


def test_a_component_that_ran_long_enough_starts_a_fresh_count():
    policy = RestartPolicy()
    for _ in range(GIVE_UP_AFTER - 1):
        assert policy.died(ran_s=1.0) is not None
    # It then ran for a while before dying again: one death, not the fifth in a row.
    assert policy.died(ran_s=STABLE_AFTER_S) == 1.0
    assert policy.in_a_row == 1


def test_delays_are_capped():
    policy = RestartPolicy()
    policy.in_a_row = 40  # never reached with the default give-up count; the cap holds anyway
    import fp_local.supervisor as sup

    old = sup.GIVE_UP_AFTER
    try:
        sup.GIVE_UP_AFTER = 100
        assert policy.died(ran_s=0.0) == MAX_DELAY_S
    finally:
        sup.GIVE_UP_AFTER = old


def test_exits_are_described_as_status_shows_them():
    assert describe_exit(-signal.SIGKILL)["text"] == "killed by SIGKILL"
    assert describe_exit(-signal.SIGKILL)["short"] == "SIGKILL"
    assert describe_exit(3) == {"code": 3, "signal": None, "short": "exit 3", "text": "exited with code 3"}
    assert "unknown" in describe_exit(None)["text"]
