"""Training losses, chosen by name.

``paper``: the loss of M. Gajdoš et al., Computer Physics Communications
(2025), doi:10.1016/j.cpc.2025.109608. It is the binary cross-entropy of the
voxels plus the binary cross-entropy of target and prediction after both are
average-pooled by (1, 1, 8), that is over blocks of 8 consecutive time bins.
The pooled term compares the share of track voxels in each stretch of 8
time bins, so a prediction shifted by a time bin within a stretch costs less
there than in the voxel term.

``bce``: the plain voxel binary cross-entropy.

Both average over every voxel of an event, so a loss value is comparable
between batch sizes. Predictions are clipped to [1e-7, 1 - 1e-7] before the
logarithm, as Keras does.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["LOSSES", "PooledBinaryCrossentropy", "VoxelBinaryCrossentropy", "get_loss"]

# Time bins averaged by the pooled term of the published loss.
PAPER_POOL = 8


def _per_event_bce(y_true: Any, y_pred: Any) -> Any:
    """Return the mean binary cross-entropy over all axes but the first, shape (n,)."""
    elementwise = ops.binary_crossentropy(y_true, y_pred, from_logits=False)
    return ops.mean(ops.reshape(elementwise, (ops.shape(elementwise)[0], -1)), axis=1)


def _pool_time(tensor: Any, pool: int) -> Any:
    """Average blocks of ``pool`` consecutive time bins.

    The time axis is the last axis of size 208, optionally followed by a
    channel axis of size 1, so the blocks are contiguous in memory and a
    reshape to (n, -1, pool) groups them.
    """
    blocks = ops.reshape(tensor, (ops.shape(tensor)[0], -1, pool))
    return ops.mean(blocks, axis=-1)


@keras.saving.register_keras_serializable(package="track_denoiser")
class VoxelBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy averaged over the voxels of each event.

    Inputs are targets in {0, 1} and probabilities, shape (n, 12, 14, 208, 1)
    or (n, 12, 14, 208).
    """

    def __init__(self, name: str = "bce", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Return the loss of each event, shape (n,)."""
        y_true = ops.cast(y_true, y_pred.dtype)
        return _per_event_bce(y_true, y_pred)


@keras.saving.register_keras_serializable(package="track_denoiser")
class PooledBinaryCrossentropy(keras.losses.Loss):
    """The published loss: voxel BCE plus BCE after average-pooling (1, 1, ``pool``).

    Inputs are targets in {0, 1} and probabilities, shape (n, 12, 14, 208, 1)
    or (n, 12, 14, 208); ``pool`` must divide 208.
    """

    def __init__(self, pool: int = PAPER_POOL, name: str = "paper_loss", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        if pool < 1 or 208 % pool:
            msg = f"pool size {pool} is invalid; expected a divisor of the 208 time bins"
            raise ValueError(msg)
        self.pool = int(pool)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Return the loss of each event, shape (n,)."""
        y_true = ops.cast(y_true, y_pred.dtype)
        voxel = _per_event_bce(y_true, y_pred)
        pooled = _per_event_bce(_pool_time(y_true, self.pool), _pool_time(y_pred, self.pool))
        return voxel + pooled

    def get_config(self) -> dict[str, Any]:
        """Return the constructor arguments, for saving."""
        config: dict[str, Any] = super().get_config()
        config["pool"] = self.pool
        return config


LOSSES: dict[str, type[keras.losses.Loss]] = {
    "paper": PooledBinaryCrossentropy,
    "bce": VoxelBinaryCrossentropy,
}


def get_loss(name: str) -> keras.losses.Loss:
    """Return a new loss object for ``name`` (a key of ``LOSSES``)."""
    try:
        return LOSSES[name]()
    except KeyError:
        msg = f"loss {name!r} is unknown; expected one of {sorted(LOSSES)}"
        raise ValueError(msg) from None
