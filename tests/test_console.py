"""console.py on its own: the progress bar of a run."""

import io

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
