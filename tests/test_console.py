"""console.py on its own: the progress bar of a run."""

import io
import re
import time

from soft_actor_critic.console import ProgressBar


def test_the_bar_shows_no_eta_in_the_warm_up(monkeypatch):
    """Random warm-up actions run far faster than the updates after them: an ETA from their rate would be
    far too optimistic, so none is shown until the updates begin."""
    monkeypatch.setattr("sys.stderr", io.StringIO())
    counted = []
    with ProgressBar(1000, 0, counted.append, warmup=100) as bar:
        for _ in range(120):
            assert ("<" in str(bar)) == (bar.n >= 100)  # tqdm's ETA reads [elapsed<remaining]
            assert ("warm-up" in str(bar)) == (bar.n < 100)
            bar.update(1)
    assert sum(counted) == 120  # on_update hears of every step once
    with ProgressBar(1000, 500, warmup=100) as resumed:  # a run resumed past its warm-up
        assert "<" in str(resumed)


def test_after_the_warm_up_the_rate_counts_only_the_steps_since(monkeypatch):
    """The warm-up's 100,000 steps in no time must not count into the rate of the updates: 100 steps in at
    least 0.2 s are at most 500 steps/s, whatever the machine."""
    monkeypatch.setattr("sys.stderr", io.StringIO())
    with ProgressBar(1_000_000, 0, warmup=100_000) as bar:
        bar.update(100_000)
        time.sleep(0.2)
        bar.update(100)
        shown = str(bar)
    assert "<" in shown and 0 < float(re.search(r"([\d.]+)step/s", shown).group(1)) <= 500
