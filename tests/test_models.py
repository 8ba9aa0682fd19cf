"""Network architectures and loading of the published model files."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from track_denoiser.losses import get_loss
from track_denoiser.models import (
    ARCHITECTURES,
    build_model,
    load_model,
    predict_probabilities,
)

REFERENCE = Path(__file__).resolve().parents[2] / "shared/reference/paper_model"
needs_reference = pytest.mark.skipif(
    not (REFERENCE / "M1.keras").is_file(),
    reason=f"published model files not found in {REFERENCE}",
)


@pytest.fixture(scope="module")
def events() -> np.ndarray:
    """Three synthetic-looking events, float16 (3, 12, 14, 208), sparse values in [0, 1]."""
    rng = np.random.default_rng(11)
    noisy = np.zeros((3, 12, 14, 208), dtype=np.float16)
    mask = rng.random(noisy.shape) < 0.01
    noisy[mask] = rng.random(int(mask.sum())).astype(np.float16)
    return noisy


@pytest.fixture(scope="module")
def reference_model():
    if not (REFERENCE / "M1.keras").is_file():
        pytest.skip(f"published model files not found in {REFERENCE}")
    return keras.saving.load_model(REFERENCE / "M1.keras", compile=False)


@needs_reference
def test_paper_structure_matches_published(reference_model):
    model = build_model("paper")

    assert model.count_params() == reference_model.count_params() == 4290
    ours = [
        (type(layer).__name__, layer.output.shape, layer.count_params()) for layer in model.layers
    ]
    theirs = [
        (type(layer).__name__, layer.output.shape, layer.count_params())
        for layer in reference_model.layers
    ]
    assert ours == theirs


@needs_reference
def test_published_weights_load_into_paper(reference_model, events):
    model = build_model("paper")
    model.load_weights(REFERENCE / "M1.weights.h5")

    ours = predict_probabilities(model, events, batch_size=2)
    theirs = predict_probabilities(reference_model, events, batch_size=2)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    # The published network is not trivial on these events.
    assert ours.max() > ours.min()


@needs_reference
@pytest.mark.parametrize("name", ["M1.keras", "M1.h5", "M1.weights.h5"])
def test_load_model_reads_every_format(name, reference_model, events):
    model = load_model(REFERENCE / name)

    np.testing.assert_allclose(
        predict_probabilities(model, events),
        predict_probabilities(reference_model, events),
        rtol=0,
        atol=1e-6,
    )


@needs_reference
def test_weights_of_other_architecture_rejected():
    with pytest.raises(
        ValueError, match=r"M1\.weights\.h5.*do not fit architecture 'wide'"
    ) as info:
        load_model(REFERENCE / "M1.weights.h5", architecture="wide")
    assert len(str(info.value)) < 600


def test_load_model_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing\.keras"):
        load_model(tmp_path / "nothing.keras")


def test_load_model_unknown_suffix(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="unknown model format"):
        load_model(path)


def test_load_model_damaged_keras_file(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="not a readable Keras model"):
        load_model(path)


def test_unknown_architecture():
    with pytest.raises(ValueError, match="architecture 'huge' is unknown"):
        build_model("huge")


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_architectures_map_events_to_probabilities(name, events):
    model = build_model(name)
    probabilities = predict_probabilities(model, events[:1])

    assert probabilities.shape == (1, 12, 14, 208)
    assert probabilities.dtype == np.float32
    assert np.all((probabilities >= 0) & (probabilities <= 1))


def test_larger_architectures_have_more_parameters():
    paper = build_model("paper").count_params()
    wide = build_model("wide").count_params()
    deep = build_model("deep").count_params()

    assert paper < wide < deep


def test_saved_compiled_model_loads(tmp_path, events):
    model = build_model("paper")
    model.compile(optimizer="adam", loss=get_loss("paper"))
    path = tmp_path / "model.keras"
    model.save(path)

    loaded = load_model(path)
    np.testing.assert_array_equal(
        predict_probabilities(loaded, events), predict_probabilities(model, events)
    )


def test_predict_batch_size_does_not_change_result(events):
    model = build_model("paper")

    one = predict_probabilities(model, events, batch_size=1)
    two = predict_probabilities(model, events, batch_size=2)
    channel = predict_probabilities(model, events.astype(np.float32)[..., None], batch_size=8)
    np.testing.assert_allclose(one, two, rtol=0, atol=1e-6)
    np.testing.assert_allclose(one, channel, rtol=0, atol=1e-6)


def test_predict_rejects_wrong_shape():
    model = build_model("paper")
    with pytest.raises(ValueError, match=r"shape \(2, 12, 14, 200\) are invalid"):
        predict_probabilities(model, np.zeros((2, 12, 14, 200), dtype=np.float32))


def test_predict_empty_input():
    model = build_model("paper")
    out = predict_probabilities(model, np.zeros((0, 12, 14, 208), dtype=np.float16))
    assert out.shape == (0, 12, 14, 208)


@needs_reference
def test_legacy_weights_only_h5_needs_architecture(tmp_path, reference_model, events):
    import h5py

    # M1.h5 without its model configuration stands for a legacy weights-only file.
    path = tmp_path / "weights_only.h5"
    path.write_bytes((REFERENCE / "M1.h5").read_bytes())
    with h5py.File(path, "r+") as handle:
        del handle.attrs["model_config"]

    with pytest.raises(ValueError, match="not a readable Keras model"):
        load_model(path)
    model = load_model(path, architecture="paper")
    np.testing.assert_allclose(
        predict_probabilities(model, events),
        predict_probabilities(reference_model, events),
        rtol=0,
        atol=1e-6,
    )
