"""The timeline: which frame shows at a given server time, before, during and after a show,
once or looping."""

from c3s import show


def test_moment_at_walks_frames_and_wraps_loops():
    timeline = show.Timeline.of([(10, 100), (11, 200), (12, 300)])
    assert timeline.total_ms == 600
    start = 1_000_000

    def at(t, loop=False, status="playing"):
        return show.moment_at(timeline, status, start, loop, start + t)

    assert at(-1) == show.Moment("before", -1, start)
    assert at(0) == show.Moment("playing", 0, start + 100)
    assert at(99.9) == show.Moment("playing", 0, start + 100)
    assert at(100) == show.Moment("playing", 1, start + 300)
    assert at(599) == show.Moment("playing", 2, start + 600)
    assert at(600) == show.Moment("ended", -1, None)
    assert at(600, loop=True) == show.Moment("playing", 0, start + 700)
    assert at(2 * 600 + 350, loop=True) == show.Moment("playing", 2, start + 2 * 600 + 600)
    assert at(50, status="ready") == show.Moment("before", -1, None)
    assert at(50, status="ended") == show.Moment("ended", -1, None)
    assert show.moment_at(show.Timeline.of([]), "playing", start, True, start) == show.Moment("before", -1, None)
