"""The blinking-light code a far-away pixel phone plays, and the video decoder that reads it.

The code
--------
A pattern is 16 slots of 75 ms (period 1.2 s); during server time ``t_ms`` a phone shows slot
``floor(t_ms / 75) mod 16`` full screen. Every slot is one of 8 colours whose RGB channels are each
fully on (255) or off (0)::

    slot 0       white  (sync marker, and each phone's per-channel "on" level)
    slot 1       black  (sync marker, and each phone's per-channel "off" level)
    slots 2..15  data: 7 symbols of two slots each; every data slot is one of the six colours
                 with one or two channels on (R, G, B, Y, C, M), never white, never black

Why this layout:

- 75 ms slots: at 30 fps (33 ms frames) every slot contains at least one frame whose whole exposure
  lies inside it, even with full-frame exposure; at 24 fps the best frame of a slot is still at
  least 90 % inside it; 60 fps is easy.
- Phones play on their own estimate of the server clock, and their light leaves the screen a
  display latency later (48-68 ms by model, different for black-to-white and white-to-black), so
  each phone's slots are shifted by its own offset, easily +-100 ms; the decoder finds each
  blob's slot grid on its own (the marker tells where a cycle starts) and measures the offset.
- White and black appear only in slots 0 and 1, so the (white, black) pair is a sync marker that no
  cyclic shift of any pattern can reproduce: a shifted pattern has a data colour (at least one
  channel wrong) where the marker should be. A data slot that reads black is an *erasure* (the
  phone was hidden: occlusion looks dark), not an error; a data slot that reads white is an error.
- Data: a pair of data slots carries one symbol of GF(31) (6 x 6 = 36 pairs, 31 used, the other
  5 pairs are invalid). The 7 symbols are a Reed-Solomon [7, 4] codeword over GF(31) (minimum
  distance 4 symbols) plus a fixed offset. The 4 message symbols are the base-31 digits of the
  number, so numbers 0 .. 131,071 (2**17) are supported; the range itself is a further check.
  The decoder fills at most 2 erased symbols and never corrects clear errors: with no erasures,
  three check symbols must agree (a random colour sequence passes with probability about 1 in
  10**5 before the marker and colour checks); any single clearly wrong symbol is always detected
  even when two symbols were erased. Soft decoding may overrule at most 2 symbols, only where
  their readings were nearly ambiguous, and only when every other codeword is clearly less likely.

The decoder
-----------
:func:`decode_frames` streams frames (memory holds per-blob time series and, until the first
detection, the frames of the first ~140 ms): blobs are detected on the per-pixel maximum of those
opening frames and re-detected now and then, followed under global drift (median shift of all
blobs), measured in a small window (per-channel sums and a centroid). At the end it recovers each
blob's slot boundaries (least within-slot variance of its own frames), its cycle phase (its own
white-then-black marker), hides frames where a blob went dark outside its black slot (occlusion),
reads each blob's 16 slots (a slot seen in two cycles: the better-covered, undimmed repeats),
normalises them by the blob's own per-channel off/on levels (two-means), and classifies each data
slot against colour templates learnt from the crowd and then refined per blob (a linear colour
response fitted on the blob's own slots: tiny blobs in 4:2:0 video lose chroma and gain clipped
colour bleed). Unclear slots become erasures; the Reed-Solomon check accepts a number only if a
check symbol confirms it, and a decode resting on one check symbol must also be the soft
decoder's choice. Blobs refused for erasures or a failed check get a soft-decision pass
(:func:`soft_decode`, per-channel noise of the blob's own fit), then one with a colour model
learnt from the crowd's decoded blobs of similar brightness. A blob whose marker was hidden takes
the cycle nearest the crowd's; a refused blob is read once more on a grid shifted by a slot
either way (hidden marker) or by 8 ms either way (a dim blob's noisy phase), each retry held to
every check. A blob whose repeated slots changed between cycles (no phone does that) gets no
decode that rests on one check symbol. Positions are intensity-weighted centroids in the
coordinates of the first frame (drift removed).

Each decoded phone then gets its light-output offset (``BlinkDetection.offset_ms``): its pattern
is known, so every frame is predicted (the share of the frame's exposure each channel was lit,
through the blob's own colour response) and the time shift of its pattern, with separate lags for
channels turning on and off, is fitted to its frames. The clip's clock is that of the timestamps
given: the server-clock time (Unix ms) at which each frame's top row started its exposure. Row
``y`` starts ``readout_ms * y / height`` later (rolling shutter) and every pixel integrates over
``exposure_ms``; both are decoder options, estimated from the crowd when not given (the
exposure that best explains the frames; the readout as the drift of offsets down the frame).
``timing="crowd"`` keeps the earlier decoder, one slot grid for the whole crowd (phones within
about +-15 ms of each other), as a reference.

Assumptions: a phone keeps its offset for the length of the clip (a few seconds); the camera
drift is mainly a translation (a few pixels per second); phones are at least ~2 window sizes
apart in the image.
"""

from c3s.vision.blink._code import (
    MAX_ERASED_SYMBOLS,
    N_NUMBERS,
    N_SLOTS,
    SLOT_MS,
    BlinkPattern,
    decode_symbols,
    pattern,
    pattern_bits,
)
from c3s.vision.blink._colours import soft_decode
from c3s.vision.blink._decode import BlinkDetection, BlinkResult, decode_frames
from c3s.vision.blink._files import clip_header, decode_clip, locate_clip
from c3s.vision.blink._timing import recover_cycle_phase, recover_slot_phase

__all__ = [
    "clip_header",
    "MAX_ERASED_SYMBOLS", "N_NUMBERS", "N_SLOTS", "SLOT_MS", "BlinkDetection", "BlinkPattern",
    "BlinkResult", "decode_clip", "decode_frames", "decode_symbols", "locate_clip", "pattern",
    "pattern_bits", "recover_cycle_phase", "recover_slot_phase", "soft_decode",
]
