"""Preprocessing of measured events before they enter the network.

Two steps, applied in this order (M. Gajdoš et al., Computer Physics
Communications (2025), doi:10.1016/j.cpc.2025.109608):

1. Chimney removal. A "chimney" is a long saturated waveform in one pad. In
   every pad where some amplitude exceeds the saturation level (800 ADC
   counts), take the waveform from the first saturated time bin to the end of
   the event. When that tail contains at least 20 nonzero values, zero each of
   its entries whose amplitude minus the tail's minimum nonzero amplitude is
   not above the standard deviation of the tail's nonzero amplitudes
   (population standard deviation, ddof = 0). Time bins before the first
   saturated one are kept as they are.
2. Normalisation: divide each event by its maximum, so the largest amplitude
   becomes 1. An all-zero event stays zero.

Both functions work on a batch of events at once and never modify their input.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .constants import CHIMNEY_MIN_NONZERO, EVENT_SHAPE, SATURATION_ADC

__all__ = ["normalise_events", "preprocess_measured", "remove_chimneys"]


def _as_batch(events: npt.ArrayLike) -> tuple[npt.NDArray[np.float32], bool]:
    array = np.asarray(events, dtype=np.float32)
    single = array.shape == EVENT_SHAPE
    if single:
        array = array[np.newaxis]
    if array.ndim != 4 or array.shape[1:] != EVENT_SHAPE:
        msg = f"events have shape {array.shape}; expected {EVENT_SHAPE} or (n, {', '.join(map(str, EVENT_SHAPE))})"
        raise ValueError(msg)
    return array, single


def remove_chimneys(
    events: npt.ArrayLike,
    saturation: float = SATURATION_ADC,
    min_nonzero: int = CHIMNEY_MIN_NONZERO,
) -> npt.NDArray[np.float32]:
    """Remove chimneys (long saturated waveforms) from measured events.

    Args:
        events: raw amplitudes in ADC counts, shape (12, 14, 208) or
            (n, 12, 14, 208).
        saturation: an amplitude strictly above this marks a pad as saturated
            (ADC counts).
        min_nonzero: a saturated pad is cleaned only when its tail from the
            first saturated time bin contains at least this many nonzero values.

    Returns:
        float32 copy of ``events`` with the same shape, chimney voxels set to 0.
    """
    batch, single = _as_batch(events)
    cleaned = batch.copy()

    # Pads as rows: (n * 12 * 14, 208) waveforms.
    waveforms = cleaned.reshape(-1, EVENT_SHAPE[2])
    saturated = waveforms > saturation
    rows = np.flatnonzero(saturated.any(axis=1))
    if rows.size == 0:
        return cleaned[0] if single else cleaned

    selected = waveforms[rows]
    first = saturated[rows].argmax(axis=1)
    tail = np.arange(EVENT_SHAPE[2])[np.newaxis, :] >= first[:, np.newaxis]
    nonzero = tail & (selected != 0)
    count = nonzero.sum(axis=1)

    # Statistics of the nonzero tail values; rows without enough of them are skipped below.
    safe_count = np.maximum(count, 1)
    minimum = np.where(nonzero, selected, np.inf).min(axis=1)
    mean = np.where(nonzero, selected, 0.0).sum(axis=1) / safe_count
    variance = (
        np.where(nonzero, (selected - mean[:, np.newaxis]) ** 2, 0.0).sum(axis=1) / safe_count
    )
    spread = np.sqrt(variance)

    remove = tail & (selected - minimum[:, np.newaxis] <= spread[:, np.newaxis])
    remove &= (count >= min_nonzero)[:, np.newaxis]
    selected[remove] = 0.0
    waveforms[rows] = selected
    return cleaned[0] if single else cleaned


def normalise_events(events: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Divide every event by its maximum amplitude.

    Args:
        events: non-negative amplitudes, shape (12, 14, 208) or (n, 12, 14, 208).

    Returns:
        float32 array of the same shape with values in [0, 1]; an event whose
        maximum is 0 is returned unchanged (all zeros).
    """
    batch, single = _as_batch(events)
    maximum = batch.reshape(len(batch), -1).max(axis=1, initial=0.0)
    scale = np.where(maximum > 0, maximum, 1.0).astype(np.float32)
    normalised = batch / scale[:, np.newaxis, np.newaxis, np.newaxis]
    return normalised[0] if single else normalised


def preprocess_measured(
    events: npt.ArrayLike,
    saturation: float = SATURATION_ADC,
    min_nonzero: int = CHIMNEY_MIN_NONZERO,
) -> npt.NDArray[np.float32]:
    """Apply chimney removal, then normalisation, to measured events.

    Args:
        events: raw amplitudes in ADC counts, shape (12, 14, 208) or
            (n, 12, 14, 208).
        saturation: saturation level in ADC counts (see ``remove_chimneys``).
        min_nonzero: minimum nonzero tail length of a chimney.

    Returns:
        float32 network input of the same shape, values in [0, 1].
    """
    return normalise_events(remove_chimneys(events, saturation, min_nonzero))
