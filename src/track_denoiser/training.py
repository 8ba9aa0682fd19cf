"""Resumable training of the denoising network.

``train`` fits a network from ``track_denoiser.models`` with Adam on the
training shards, watches the validation loss, and writes:

- the final model (``.keras``): the weights of the epoch with the lowest
  validation loss, saved in float32 whatever precision training used;
- the history of every epoch as CSV and JSON (loss, precision, recall and
  AUC at threshold 0.5, for training and validation data, and seconds).

Training stops early when the validation loss has not improved for
``patience`` epochs. All outputs are written to temporary names and renamed.

Resuming: the backup folder (by default ``<model folder>/backup``) contains the
state after the last finished epoch: Keras ``BackupAndRestore`` files
(weights, optimizer, epoch number), the best weights so far and the history
so far. A killed run that is started again with the same settings and shards
continues with the next epoch, and the history, early stopping and best
model carry on as if the run had not stopped. A backup from other settings
or shards is discarded. The folder is removed when training has finished.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import atomic_path, atomic_write
from .dataset import Shard, ShardDataset, open_shards
from .models import ARCHITECTURES, build_model

if TYPE_CHECKING:
    import keras

__all__ = [
    "GpuUnavailableError",
    "TrainingResult",
    "TrainingSettings",
    "check_devices",
    "train",
]

log = logging.getLogger(__name__)

# Version of the files in the backup folder; a backup of another version is discarded.
_BACKUP_VERSION = 1


class GpuUnavailableError(RuntimeError):
    """A GPU was requested but none is visible to TensorFlow."""


@dataclass(frozen=True)
class TrainingSettings:
    """Settings of one training run.

    Attributes:
        architecture: network name, a key of ``models.ARCHITECTURES``.
        loss: loss name, a key of ``losses.LOSSES`` (checked when training
            starts, because the losses module imports Keras).
        epochs: maximum number of epochs.
        batch_size: events per training step (global, over all GPUs).
        learning_rate: Adam learning rate.
        patience: epochs without a lower validation loss before stopping.
        shuffle_buffer: events shuffled together (rounded up to whole shards).
        mixed_precision: compute in float16 with float32 weights on a GPU;
            ignored on the CPU.
        seed: seed of weight initialisation and shuffling.
        require_gpu: stop at once when no GPU is visible to TensorFlow.
    """

    architecture: str = "paper"
    loss: str = "paper"
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    patience: int = 5
    shuffle_buffer: int = 10_000
    mixed_precision: bool = False
    seed: int = 0
    require_gpu: bool = False

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            msg = f"architecture {self.architecture!r} is unknown; expected one of {sorted(ARCHITECTURES)}"
            raise ValueError(msg)
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                msg = f"training {name} {value!r} is invalid; expected a positive integer"
                raise ValueError(msg)
        for name in ("patience", "shuffle_buffer", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                msg = f"training {name} {value!r} is invalid; expected an integer >= 0"
                raise ValueError(msg)
        if not (isinstance(self.learning_rate, int | float) and self.learning_rate > 0):
            msg = f"learning rate {self.learning_rate!r} is invalid; expected a positive number"
            raise ValueError(msg)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], **overrides: Any) -> TrainingSettings:
        """Build settings from a config section; unknown keys are rejected.

        Args:
            mapping: keys named like the attributes; missing keys keep their defaults.
            overrides: values that replace those of ``mapping``.
        """
        values = {**mapping, **overrides}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            msg = f"training settings {unknown} are unknown; expected some of {sorted(known)}"
            raise ValueError(msg)
        if "learning_rate" in values:
            values["learning_rate"] = float(values["learning_rate"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as plain JSON-compatible values."""
        return dataclasses.asdict(self)


@dataclass
class TrainingResult:
    """Outputs of a finished training run.

    Attributes:
        model_path: the saved final model.
        history: one record per finished epoch (``epoch`` counts from 1).
        best_epoch: epoch (from 1) whose weights the final model contains.
        best_val_loss: validation loss of that epoch.
        stopped_early: whether early stopping ended the run.
        resumed_at: epochs (from 1) at which a rerun continued a killed run.
    """

    model_path: Path
    history: list[dict[str, Any]]
    best_epoch: int
    best_val_loss: float
    stopped_early: bool
    resumed_at: list[int] = field(default_factory=list)


# ---------------------------------------------------------------------------
# Devices


def _configure_threads(threads: int | None) -> None:
    import tensorflow as tf

    if not threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    except RuntimeError:
        # TensorFlow fixes its thread pools when it first runs an operation.
        log.debug("TensorFlow is already initialised; keeping its thread pools")


def check_devices(require_gpu: bool) -> list[str]:
    """Return the names of the GPUs visible to TensorFlow; raise at once if one is required but none is visible.

    Raises:
        GpuUnavailableError: ``require_gpu`` is set and no GPU is visible.
    """
    import tensorflow as tf

    gpus = [device.name for device in tf.config.list_physical_devices("GPU")]
    if require_gpu and not gpus:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")
        msg = (
            "training requires a GPU (setting require_gpu, or a gpu resource above 0), but "
            f"TensorFlow finds none (CUDA_VISIBLE_DEVICES={visible}). On MetaCentrum some nodes "
            "sometimes hide their GPU from TensorFlow: submit the job again (with Snakemake "
            "--retries the retry is a new PBS job, which may run on another node), or set "
            "require_gpu to false and the gpu resource to 0 to train on the CPU"
        )
        raise GpuUnavailableError(msg)
    log.info("GPUs visible to TensorFlow: %s", ", ".join(gpus) if gpus else "none")
    return gpus


@contextmanager
def _dtype_policy(name: str) -> Iterator[None]:
    """Set the global Keras dtype policy for the duration of the block."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


# ---------------------------------------------------------------------------
# Backup state


def _fingerprint(
    settings: TrainingSettings, train: Sequence[Shard], validation: Sequence[Shard]
) -> dict[str, Any]:
    """Return what a backup must match to be resumed: settings and the shards' names and sizes."""
    resumable = settings.to_dict()
    # These may change between a killed run and its rerun without spoiling the state.
    for key in ("epochs", "patience", "require_gpu"):
        resumable.pop(key)

    def describe(shards: Sequence[Shard]) -> list[list[Any]]:
        # Folder and file name only: a job copies its shards to a scratch
        # folder whose path changes from run to run.
        described = []
        for shard in shards:
            path = Path(shard.name)
            described.append(
                [f"{path.parent.name}/{path.name}", shard.n_events, path.stat().st_size]
            )
        return described

    return {
        "version": _BACKUP_VERSION,
        "settings": resumable,
        "train": describe(train),
        "validation": describe(validation),
    }


@dataclass
class _Progress:
    """History and best epoch so far, stored as ``progress.json`` in the backup folder."""

    fingerprint: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.inf
    stopped_early: bool = False
    resumed_at: list[int] = field(default_factory=list)

    def save(self, path: Path) -> None:
        record = dataclasses.asdict(self)
        record["best_val_loss"] = None if math.isinf(self.best_val_loss) else self.best_val_loss
        with atomic_write(path) as handle:
            json.dump(record, handle, indent=1)

    @classmethod
    def load(cls, path: Path) -> _Progress:
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("best_val_loss") is None:
            record["best_val_loss"] = math.inf
        return cls(**record)


class _BackupFolder:
    """Files of the backup folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.keras = folder / "keras"
        self.progress = folder / "progress.json"
        self.best = folder / "best.weights.h5"

    def restore(self, fingerprint: dict[str, Any]) -> _Progress:
        """Return the saved progress if it belongs to this run; otherwise clear the folder."""
        if self.progress.is_file() and self.keras.is_dir():
            try:
                progress = _Progress.load(self.progress)
            except (ValueError, TypeError, KeyError) as error:
                log.warning("backup %s is unreadable (%s); starting afresh", self.progress, error)
            else:
                if progress.fingerprint == fingerprint:
                    log.info(
                        "resuming from backup %s after epoch %d", self.folder, len(progress.history)
                    )
                    return progress
                log.warning(
                    "backup %s comes from other settings or shards; starting afresh", self.folder
                )
        if self.folder.exists():
            shutil.rmtree(self.folder)
        return _Progress(fingerprint=fingerprint)

    def save_best(self, model: keras.Model) -> None:
        """Save the weights atomically; Keras needs the name to end in .weights.h5."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{uuid.uuid4().hex}.partial.weights.h5"
        try:
            model.save_weights(tmp)
            tmp.replace(self.best)
        finally:
            tmp.unlink(missing_ok=True)


def _make_progress_callback(
    progress: _Progress,
    backup: _BackupFolder,
    train_data: ShardDataset,
    patience: int,
) -> keras.callbacks.Callback:
    import keras

    class ProgressCallback(keras.callbacks.Callback):
        """Record each epoch, keep the best weights, stop early; state survives a restart."""

        def __init__(self) -> None:
            super().__init__()
            self._first = True
            self._started = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if self._first:
                self._first = False
                # BackupAndRestore restored the state after `epoch` epochs. A
                # record of a later epoch exists when a kill fell between this
                # callback's save and the backup's; that epoch is trained again.
                del progress.history[epoch:]
                if epoch > 0:
                    progress.resumed_at.append(epoch + 1)
            train_data.set_epoch(epoch)
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            record: dict[str, Any] = {"epoch": epoch + 1}
            record.update({key: float(value) for key, value in (logs or {}).items()})
            record["seconds"] = round(time.perf_counter() - self._started, 3)
            record = {key: record[key] for key in _history_columns([record])}
            progress.history.append(record)

            val_loss = record.get("val_loss", math.nan)
            if val_loss < progress.best_val_loss:
                progress.best_val_loss = val_loss
                progress.best_epoch = epoch + 1
                backup.save_best(self.model)
            # Early stopping as keras.callbacks.EarlyStopping does it, but with
            # its state in the backup: stop after `patience` epochs without a
            # lower validation loss.
            epochs_since_best = epoch + 1 - progress.best_epoch
            if epochs_since_best > 0 and epochs_since_best >= patience:
                progress.stopped_early = True
                self.model.stop_training = True
            progress.save(backup.progress)
            log.info(
                "epoch %d: %s%s",
                epoch + 1,
                ", ".join(f"{k}={v:.5g}" for k, v in record.items() if k != "epoch"),
                " (best so far)" if progress.best_epoch == epoch + 1 else "",
            )

    return ProgressCallback()


# ---------------------------------------------------------------------------
# Outputs


# Column order of the history: epoch, training metrics, validation metrics, the rest.
_METRIC_ORDER = ("loss", "precision", "recall", "auc")


def _history_columns(history: list[dict[str, Any]]) -> list[str]:
    keys: list[str] = []
    for record in history:
        keys += [key for key in record if key not in keys]
    ordered = ["epoch"]
    ordered += [name for name in _METRIC_ORDER if name in keys]
    ordered += [f"val_{name}" for name in _METRIC_ORDER if f"val_{name}" in keys]
    return ordered + [key for key in keys if key not in ordered]


def _write_history(
    progress: _Progress,
    settings: TrainingSettings,
    train: ShardDataset,
    validation: ShardDataset,
    csv_path: Path,
    json_path: Path,
) -> None:
    import pandas as pd

    columns = _history_columns(progress.history)
    with atomic_write(csv_path) as handle:
        pd.DataFrame(progress.history, columns=columns).to_csv(handle, index=False)
    summary = {
        "settings": settings.to_dict(),
        "train_shards": [shard.name for shard in train.shards],
        "validation_shards": [shard.name for shard in validation.shards],
        "train_events": train.n_events,
        "validation_events": validation.n_events,
        "best_epoch": progress.best_epoch,
        "best_val_loss": progress.best_val_loss,
        "stopped_early": progress.stopped_early,
        "resumed_at": progress.resumed_at,
        "epochs": progress.history,
    }
    with atomic_write(json_path) as handle:
        json.dump(summary, handle, indent=1)


def _save_final_model(architecture: str, best_weights: Path, model_path: Path) -> None:
    """Save the best weights as a float32 model, whatever precision training used."""
    with _dtype_policy("float32"):
        model = build_model(architecture)
    model.load_weights(best_weights)
    with atomic_path(model_path) as tmp:
        model.save(tmp)


# ---------------------------------------------------------------------------
# Training


def train(
    train_files: Sequence[str | os.PathLike[str]],
    validation_files: Sequence[str | os.PathLike[str]],
    model_path: str | os.PathLike[str],
    history_csv: str | os.PathLike[str],
    history_json: str | os.PathLike[str],
    settings: TrainingSettings | Mapping[str, Any] | None = None,
    *,
    require_gpu: bool = False,
    backup_dir: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainingResult:
    """Train a network on denoising shards; resume a killed run from its backup.

    Args:
        train_files: training shard files (compact ``.npz`` or dense
            ``.npy``, see ``dataset.open_shards``).
        validation_files: validation shard files, same format.
        model_path: final model, ending in ``.keras``.
        history_csv: per-epoch history as CSV.
        history_json: settings, data, best epoch and per-epoch history as JSON.
        settings: training settings, or a config mapping of them (see
            ``TrainingSettings.from_mapping``); defaults to ``TrainingSettings()``.
        require_gpu: stop at once when no GPU is visible, in addition to
            ``settings.require_gpu`` (the workflow sets it for a gpu resource above 0).
        backup_dir: folder of the resumable state; default
            ``<model folder>/backup``. It must not hold other files.
        threads: CPU threads for TensorFlow; default: all.
        callbacks: extra Keras callbacks, run after the built-in ones.

    Returns:
        What the run produced.

    Raises:
        GpuUnavailableError: a GPU is required and none is visible (raised
            before any data is read).
        ShardError: a shard is truncated, damaged or inconsistent (raised
            before the first step).
    """
    import keras
    import tensorflow as tf

    from .losses import get_loss

    if settings is None:
        settings = TrainingSettings()
    elif not isinstance(settings, TrainingSettings):
        settings = TrainingSettings.from_mapping(settings)
    model_path = Path(model_path)
    if model_path.suffix != ".keras":
        msg = f"model path {model_path} is invalid; the final model is saved as a .keras file"
        raise ValueError(msg)

    loss = get_loss(settings.loss)
    _configure_threads(threads)
    gpus = check_devices(settings.require_gpu or require_gpu)
    keras.utils.set_random_seed(settings.seed)

    train_shards = open_shards(train_files)
    validation_shards = open_shards(validation_files)
    train_data = ShardDataset(
        train_shards,
        settings.batch_size,
        shuffle=True,
        seed=settings.seed,
        shuffle_buffer=settings.shuffle_buffer,
    )
    validation_data = ShardDataset(validation_shards, settings.batch_size)
    log.info(
        "training %s on %d events (%d shards), validating on %d events (%d shards)",
        settings.architecture,
        train_data.n_events,
        len(train_shards),
        validation_data.n_events,
        len(validation_shards),
    )

    backup = _BackupFolder(Path(backup_dir) if backup_dir else model_path.parent / "backup")
    progress = backup.restore(_fingerprint(settings, train_shards, validation_shards))

    policy = "float32"
    if settings.mixed_precision:
        if gpus:
            policy = "mixed_float16"
        else:
            log.warning("mixed precision needs a GPU; training in float32 on the CPU")
    # NOTE: the mixed-precision and multi-GPU paths have not run on a GPU in the
    # tests; on the CPU only the policy and the loss-scaling optimizer were checked.
    strategy = tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()

    with _dtype_policy(policy), strategy.scope():
        model = build_model(settings.architecture)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=settings.learning_rate),
            loss=loss,
            metrics=[
                keras.metrics.Precision(name="precision"),
                keras.metrics.Recall(name="recall"),
                keras.metrics.AUC(name="auc"),
            ],
        )
        if progress.stopped_early:
            log.info("the backed-up run had already stopped early; writing its outputs")
        else:
            model.fit(
                train_data.tf_dataset(),
                validation_data=validation_data.tf_dataset(),
                epochs=settings.epochs,
                shuffle=False,  # the dataset shuffles; see ShardDataset
                verbose=0,
                callbacks=[
                    keras.callbacks.TerminateOnNaN(),
                    _make_progress_callback(progress, backup, train_data, settings.patience),
                    keras.callbacks.BackupAndRestore(
                        str(backup.keras), double_checkpoint=True, delete_checkpoint=False
                    ),
                    *callbacks,
                ],
            )

    if not backup.best.is_file() or progress.best_epoch == 0:
        msg = (
            "training produced no model with a finite validation loss (the loss diverged); "
            "lower the learning rate or check the shards"
        )
        raise RuntimeError(msg)

    _save_final_model(settings.architecture, backup.best, model_path)
    _write_history(
        progress, settings, train_data, validation_data, Path(history_csv), Path(history_json)
    )
    shutil.rmtree(backup.folder, ignore_errors=True)
    log.info(
        "finished after %d epochs; best epoch %d (val_loss %.5g) saved to %s",
        len(progress.history),
        progress.best_epoch,
        progress.best_val_loss,
        model_path,
    )
    return TrainingResult(
        model_path=model_path,
        history=progress.history,
        best_epoch=progress.best_epoch,
        best_val_loss=progress.best_val_loss,
        stopped_early=progress.stopped_early,
        resumed_at=progress.resumed_at,
    )
