"""How often a pixel phone checks in, and so how far ahead a show must start for every phone to
have its track by the first frame. One home for the numbers the pixel page, the operator page
and the server's default start all use.

A phone checks in (its pixel and the show's timeline head, one request on the fast path) every
CHECKIN_MS, spread by +-CHECKIN_JITTER so a stadium's check-ins do not arrive in waves: 100,000
phones every 10 s is 10,000 short reads a second. The longest wait between two check-ins is
CHECKIN_MS * (1 + CHECKIN_JITTER) = 12.5 s; a phone that learns of the show then fetches its
track (one request, a few ms when the maps are built) and needs its first frame on screen before
the start. So a show starts at least MIN_LEAD_MS = 12.5 s + 2.5 s = 15 s ahead, and every phone
that is on the network and checking in has its track in time.

While a phone waits to be placed it checks in faster (PLACING_CHECKIN_MS), so it shows its place
within a few seconds of the observer's photo: 100,000 phones calibrating at once is 33,000 cheap
check-ins a second, for the minutes calibration lasts.
"""

from __future__ import annotations

import math

CHECKIN_MS = 10_000
CHECKIN_JITTER = 0.25
PLACING_CHECKIN_MS = 3_000
TRACK_MARGIN_MS = 2_500
MIN_LEAD_MS = math.ceil(CHECKIN_MS * (1 + CHECKIN_JITTER)) + TRACK_MARGIN_MS


def page_settings() -> dict[str, int | float]:
    """What the pixel and operator pages read from their <main> element's data attributes."""
    return {"checkin_ms": CHECKIN_MS, "checkin_jitter": CHECKIN_JITTER,
            "placing_checkin_ms": PLACING_CHECKIN_MS, "min_lead_ms": MIN_LEAD_MS}
