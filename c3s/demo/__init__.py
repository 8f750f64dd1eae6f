"""`c3s demo`: a whole show, simulated end to end on the embedded default.

A stand of phones joins a scene through the API; calibration photos (QR) of its sections and a
blink clip of the whole stand are rendered and uploaded as an observer would; the locate jobs
place the phones; an animation is uploaded and played, each phone fetching its own track and
playing it on its synced clock. Every figure the demo prints is measured in that run.

Stages, one module each: :mod:`.stand` (the seats and who sits where), :mod:`.calibration`
(photos, clip, uploads), :mod:`.show` (frames, tracks, playback), :mod:`.report` (the table
and the pictures). :mod:`.api` is the thin client they share.
"""


class DemoError(RuntimeError):
    """A step of the demo did not do what the product promises; the message says which."""
