"""The blink code: 16 slots of 75 ms, a Reed-Solomon [7, 4] word over GF(31), and its algebra."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SLOT_MS = 75.0
N_SLOTS = 16
N_NUMBERS = 2**17
"""Numbers 0 .. N_NUMBERS - 1 have a pattern."""

_P = 31  # GF(31): one symbol per pair of data slots
_N_SYMBOLS = 7
_K_SYMBOLS = 4
_ALPHA = np.arange(1, _N_SYMBOLS + 1, dtype=np.int64)
_VANDER = (_ALPHA[:, None] ** np.arange(_K_SYMBOLS)[None, :]) % _P  # (7, 4)
_OFFSET = np.array([3, 17, 8, 25, 12, 29, 5], dtype=np.int64)
_DATA_BITS = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=np.uint8
)  # R, G, B, Y, C, M (RGB order)
_BITS_TO_DATA = {tuple(int(b) for b in bits): i for i, bits in enumerate(_DATA_BITS)}
MAX_ERASED_SYMBOLS = 2


@dataclass(frozen=True)
class BlinkPattern:
    """What a phone plays: ``colors[k]`` (RGB uint8) during slot ``k`` of every cycle.

    Attributes
    ----------
    number : int
        The pixel number this pattern encodes.
    slot_ms : float
        Slot duration in milliseconds (server clock).
    colors : np.ndarray, shape (n_slots, 3), uint8, RGB
        Each channel is 0 or 255.
    """

    number: int
    slot_ms: float
    colors: np.ndarray

    @property
    def period_ms(self) -> float:
        return self.slot_ms * len(self.colors)

    def color_at(self, t_ms: float) -> np.ndarray:
        """RGB colour (uint8, shape (3,)) shown at server time ``t_ms`` (Unix milliseconds)."""
        return self.colors[int(np.floor(t_ms / self.slot_ms)) % len(self.colors)]


def _check_number(number: int) -> int:
    if isinstance(number, bool) or not isinstance(number, int | np.integer):
        raise ValueError(f"pixel number must be an integer, got {number!r}")
    if not 0 <= int(number) < N_NUMBERS:
        raise ValueError(f"pixel number must be in 0..{N_NUMBERS - 1}, got {number}")
    return int(number)


def _symbols(number: int) -> np.ndarray:
    digits = np.array([(number // _P**i) % _P for i in range(_K_SYMBOLS)], dtype=np.int64)
    return (_VANDER @ digits + _OFFSET) % _P


def pattern(number: int) -> BlinkPattern:
    """The blink pattern of pixel ``number`` (0 .. 131,071).

    Raises
    ------
    ValueError
        If ``number`` is not an integer in range.
    """
    number = _check_number(number)
    symbols = _symbols(number)
    data = np.stack([symbols // 6, symbols % 6], axis=1).reshape(-1)  # 14 colour indices
    bits = np.concatenate([[[1, 1, 1], [0, 0, 0]], _DATA_BITS[data]])
    return BlinkPattern(number=number, slot_ms=SLOT_MS, colors=(bits * 255).astype(np.uint8))


def pattern_bits(numbers: np.ndarray) -> np.ndarray:
    """Channel bits of many patterns at once: ``(len(numbers), 16, 3)`` uint8 of 0/1 (RGB)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size and (numbers.min() < 0 or numbers.max() >= N_NUMBERS):
        raise ValueError(f"pixel numbers must be in 0..{N_NUMBERS - 1}")
    digits = np.stack([(numbers // _P**i) % _P for i in range(_K_SYMBOLS)], axis=1)
    symbols = (digits @ _VANDER.T + _OFFSET) % _P  # (n, 7)
    data = np.stack([symbols // 6, symbols % 6], axis=2).reshape(len(numbers), 2 * _N_SYMBOLS)
    head = np.broadcast_to(np.array([[1, 1, 1], [0, 0, 0]], np.uint8), (len(numbers), 2, 3))
    return np.concatenate([head, _DATA_BITS[data]], axis=1)




def _inv_mod(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a square matrix over GF(31) (Gauss-Jordan)."""
    n = len(matrix)
    aug = np.concatenate([matrix % _P, np.eye(n, dtype=np.int64)], axis=1)
    for col in range(n):
        pivot = col + int(np.flatnonzero(aug[col:, col])[0])
        aug[[col, pivot]] = aug[[pivot, col]]
        aug[col] = aug[col] * pow(int(aug[col, col]), _P - 2, _P) % _P
        for row in range(n):
            if row != col and aug[row, col]:
                aug[row] = (aug[row] - aug[row, col] * aug[col]) % _P
    return aug[:, n:]


def decode_symbols(symbols: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Numbers from Reed-Solomon words; -1 where the word is inconsistent or out of range.

    Parameters
    ----------
    symbols : np.ndarray, shape (n, 7), int
        Received GF(31) symbols (values at unknown positions are ignored).
    known : np.ndarray, shape (n, 7), bool
        Which symbols were read; rows with fewer than 5 known symbols give -1 (at least one
        check symbol must confirm the word).
    """
    symbols = (np.asarray(symbols, dtype=np.int64) - _OFFSET) % _P
    known = np.asarray(known, dtype=bool)
    out = np.full(len(symbols), -1, dtype=np.int64)
    masks = known @ (1 << np.arange(_N_SYMBOLS))
    for mask in np.unique(masks):
        positions = np.flatnonzero((int(mask) >> np.arange(_N_SYMBOLS)) & 1)
        if len(positions) < _K_SYMBOLS + 1:
            continue
        rows = np.flatnonzero(masks == mask)
        basis, checks = positions[:_K_SYMBOLS], positions[_K_SYMBOLS:]
        digits = symbols[np.ix_(rows, basis)] @ _inv_mod(_VANDER[basis]).T % _P  # (r, 4)
        predicted = digits @ _VANDER[checks].T % _P
        ok = np.all(predicted == symbols[np.ix_(rows, checks)], axis=1)
        numbers = digits @ (_P ** np.arange(_K_SYMBOLS))
        ok &= numbers < N_NUMBERS
        out[rows[ok]] = numbers[ok]
    return out
