"""Network architectures, chosen by name, and loading of saved models.

``paper`` is the published network "M1" of M. Gajdoš et al., Computer
Physics Communications (2025), doi:10.1016/j.cpc.2025.109608: a small 3D
U-Net that pools and up-samples along the drift axis z only. Input and output
have shape (12, 14, 208, 1); the output is the per-voxel probability that the
voxel belongs to the track.

Every convolution is 3x3x3 with stride 1, padding ``"same"`` and ReLU, except
the last one (1 filter, sigmoid). Three skip branches start from the input
(at full z resolution, z / 2 and z / 4), and the encoder pools z three times
by 2 (208 → 26). The larger variants keep this topology and scale the number
of filters (``wide``) or add a convolution to every block (``deep``).

Keras 3 (checked with 3.15) stores a ``.weights.h5`` file under names derived
from the order of ``model.layers``, which follows the graph's topology. ``build_model("paper")``
builds the same graph as the published model, so the published weights file
loads into it.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .constants import EVENT_SHAPE

if TYPE_CHECKING:
    import keras

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "build_model",
    "load_model",
    "predict_probabilities",
]

log = logging.getLogger(__name__)

INPUT_SHAPE = (*EVENT_SHAPE, 1)

# Pooling and up-sampling act on the drift axis z only.
_Z_POOL = (1, 1, 2)


@dataclass(frozen=True)
class Architecture:
    """Filter counts of the U-Net family that the published network belongs to.

    Attributes:
        description: one line for help texts.
        skip_filters: filters of the two convolutions of each skip branch.
        encoder_filters: filters of the convolution before each of the three poolings.
        bottleneck_filters: filters of the two convolutions at z / 8.
        decoder_filters: filters of the convolutions after each concatenation.
        extra_convolutions: convolutions added to every block (0 for the published network).
    """

    description: str
    skip_filters: int
    encoder_filters: tuple[int, int, int]
    bottleneck_filters: int
    decoder_filters: int
    extra_convolutions: int = 0


ARCHITECTURES: dict[str, Architecture] = {
    "paper": Architecture(
        description="the published network M1 (4,290 parameters)",
        skip_filters=2,
        encoder_filters=(2, 3, 4),
        bottleneck_filters=4,
        decoder_filters=3,
    ),
    "wide": Architecture(
        description="M1 with four times the filters (64,461 parameters), for GPUs",
        skip_filters=8,
        encoder_filters=(8, 12, 16),
        bottleneck_filters=16,
        decoder_filters=12,
    ),
    "deep": Architecture(
        description="the wide network with one more convolution per block (128,597 parameters)",
        skip_filters=8,
        encoder_filters=(8, 12, 16),
        bottleneck_filters=16,
        decoder_filters=12,
        extra_convolutions=1,
    ),
}


def _architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        msg = f"architecture {name!r} is unknown; expected one of {sorted(ARCHITECTURES)}"
        raise ValueError(msg) from None


def build_model(name: str = "paper") -> keras.Model:
    """Build an untrained network of architecture ``name``.

    The layers follow the current Keras dtype policy, except the output
    convolution, which computes in float32 so that the sigmoid and the loss
    stay accurate under mixed precision.

    Args:
        name: a key of ``ARCHITECTURES``.

    Returns:
        A functional model mapping float32 (n, 12, 14, 208, 1) to float32
        probabilities of the same shape.
    """
    import keras
    from keras import layers

    spec = _architecture(name)
    repeat = 1 + spec.extra_convolutions

    def conv(filters: int, tensor: keras.KerasTensor, count: int) -> keras.KerasTensor:
        for _ in range(count):
            tensor = layers.Conv3D(filters, 3, padding="same", activation="relu")(tensor)
        return tensor

    inputs = keras.Input(shape=INPUT_SHAPE, name="noisy")

    # The layer order below matters: Keras names the entries of a weights file
    # by the order of model.layers, which follows the traversal of this graph.
    x = inputs
    for filters in spec.encoder_filters:
        x = conv(filters, x, repeat)
        x = layers.AveragePooling3D(_Z_POOL)(x)

    input_half = layers.AveragePooling3D(_Z_POOL)(inputs)
    input_quarter = layers.AveragePooling3D(_Z_POOL)(input_half)
    skip_quarter = conv(spec.skip_filters, input_quarter, 2 * repeat)
    skip_half = conv(spec.skip_filters, input_half, 2 * repeat)
    skip_full = conv(spec.skip_filters, inputs, 2 * repeat)

    x = conv(spec.bottleneck_filters, x, 2 * repeat)
    for skip, count in ((skip_quarter, 2), (skip_half, 2), (skip_full, 3)):
        x = layers.UpSampling3D(_Z_POOL)(x)
        x = layers.Concatenate()([x, skip])
        x = conv(spec.decoder_filters, x, count * repeat)

    outputs = layers.Conv3D(
        1, 3, padding="same", activation="sigmoid", dtype="float32", name="probability"
    )(x)
    return keras.Model(inputs, outputs, name=f"track_denoiser_{name}")


def _custom_objects() -> dict[str, type]:
    # Models saved after compile() refer to the project's losses by class name.
    from .losses import LOSSES

    return {cls.__name__: cls for cls in LOSSES.values()}


def _first_shape_error(error: Exception) -> str:
    """Return the line of a Keras loading error that names the mismatched shapes."""
    lines = str(error).splitlines()
    for line in lines:
        if "variable.shape=" in line:
            return line.split("Target variable")[0].strip()
    return lines[0] if lines else type(error).__name__


def load_model(path: str | os.PathLike[str], architecture: str | None = None) -> keras.Model:
    """Load a trained network from any of the formats the published models use.

    Args:
        path: a ``.keras`` archive, a legacy full-model ``.h5`` file, or a
            ``.weights.h5`` file (weights only).
        architecture: for a ``.weights.h5`` file, the architecture the
            weights belong to (default ``"paper"``). A legacy ``.h5`` file
            without a model configuration also needs it.

    Returns:
        The model, not compiled.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a model of a supported format, or its
            weights do not fit ``architecture``.
    """
    import keras

    path = Path(path)
    if not path.is_file():
        msg = f"model file {path} not found"
        raise FileNotFoundError(msg)
    name = path.name.lower()

    if name.endswith(".weights.h5"):
        model = build_model(architecture or "paper")
        try:
            with warnings.catch_warnings():
                # Weights files of older Keras versions lack groups for the
                # layer-less containers that Keras 3.15 walks; nothing is missed.
                warnings.filterwarnings("ignore", message="Skipping nested container")
                model.load_weights(path)
        except (ValueError, OSError, KeyError) as error:
            msg = (
                f"{path}: the weights do not fit architecture {architecture or 'paper'!r} "
                f"({_first_shape_error(error)}); pass the architecture they were trained with"
            )
            raise ValueError(msg) from error
        return model

    if name.endswith((".keras", ".h5")):
        try:
            return keras.saving.load_model(path, compile=False, custom_objects=_custom_objects())
        except (ValueError, OSError, KeyError, TypeError) as error:
            if name.endswith(".h5") and architecture is not None:
                # A legacy file holding weights only: load them by layer order.
                model = build_model(architecture)
                model.load_weights(path)
                return model
            msg = f"{path}: not a readable Keras model ({error})"
            raise ValueError(msg) from error

    msg = f"{path}: unknown model format; expected a .keras, .h5 or .weights.h5 file"
    raise ValueError(msg)


def predict_probabilities(
    model: keras.Model, noisy: npt.ArrayLike, batch_size: int = 32
) -> npt.NDArray[np.float32]:
    """Run the network on events and return the per-voxel track probabilities.

    Args:
        model: a network mapping (n, 12, 14, 208, 1) to probabilities.
        noisy: float16 or float32 events, shape (n, 12, 14, 208) or
            (n, 12, 14, 208, 1); amplitudes as the network was trained on
            (synthetic events lie in [0, 1]).
        batch_size: events per forward pass.

    Returns:
        float32 probabilities of shape (n, 12, 14, 208).
    """
    events = np.asarray(noisy)
    if events.ndim == 5 and events.shape[-1] == 1:
        events = events[..., 0]
    if events.ndim != 4 or events.shape[1:] != EVENT_SHAPE:
        msg = f"events of shape {events.shape} are invalid; expected (n, {', '.join(map(str, EVENT_SHAPE))})"
        raise ValueError(msg)
    if batch_size < 1:
        msg = f"batch size {batch_size} is invalid; expected a positive integer"
        raise ValueError(msg)

    out = np.empty(events.shape, dtype=np.float32)
    size = max(1, min(batch_size, len(events)))
    batch = np.zeros((size, *INPUT_SHAPE), dtype=np.float32)
    for start in range(0, len(events), size):
        count = min(size, len(events) - start)
        # A fixed batch shape (the last batch padded with zeros) keeps one traced function.
        batch[:count, ..., 0] = events[start : start + count]
        batch[count:] = 0.0
        probabilities = np.asarray(model.predict_on_batch(batch), dtype=np.float32)
        out[start : start + count] = probabilities[:count, ..., 0]
    return out
