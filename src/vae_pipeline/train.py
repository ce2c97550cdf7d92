"""The training loop: a VAE trained on sharded splits, with checkpoints that
survive ``kill -9``.

Shared by the training, retraining and latent_comparison pipelines, whose nodes
call :func:`train_vae`; none of them imports another pipeline's nodes for it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import vae_pipeline.models  # noqa: F401 (imports TensorFlow quietly, first)

# isort: split
import keras
import tensorflow as tf

# Keras itself reads op determinism from here; TensorFlow exports no getter, and
# no way to turn it off again but this one.
from tensorflow.python.framework.config import (
    disable_op_determinism,
    is_op_determinism_enabled,
)

from vae_pipeline.cluster import task_role
from vae_pipeline.console import is_terminal
from vae_pipeline.data.shards import ShardedArrays, check_same_version
from vae_pipeline.errors import InputDataError, TrainingError
from vae_pipeline.locks import FileLock, LockHeld
from vae_pipeline.models import VAE, build_vae
from vae_pipeline.models.callbacks import (
    EpochLogger,
    EpochProgress,
    KLWarmup,
    RestoreFromChief,
)
from vae_pipeline.models.data import ShardFiles, evaluation_dataset, training_dataset

if TYPE_CHECKING:  # the training pipeline's package imports this module
    from vae_pipeline.pipelines.training.params import TrainingParams

logger = logging.getLogger(__name__)

HISTORY_FILE = "history.csv"
LOCK_FILE = "lock"
BACKUP_FOLDER = "backup"
# A finished training's model, kept in its checkpoint folder until the model is
# saved (release_checkpoint): a failed save (a full disk, object storage gone)
# does not throw the training away; the same command picks it up.
FINISHED_MODEL = "finished.keras"


def shard_files(split: ShardedArrays) -> ShardFiles:
    """The file-level description of a split that the tf.data readers need.

    Args:
        split: A loaded model-input split.

    Returns:
        Its shard paths, header sizes, image shape and size.
    """
    return ShardFiles(
        paths=[str(shard.images) for shard in split.shards],
        header_bytes=[shard.images_header_bytes for shard in split.shards],
        image_shape=split.image_shape,
        num_examples=split.num_examples,
    )


def distribution_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy named by ``training.strategy``.

    ``mirrored`` replicates over every GPU of this machine, or over every logical
    CPU device when there is no GPU; ``multi_worker_mirrored`` reads ``TF_CONFIG``.

    Args:
        name: ``default``, ``mirrored`` or ``multi_worker_mirrored``.

    Returns:
        The strategy.
    """
    if name == "mirrored":
        devices = tf.config.list_logical_devices(
            "GPU"
        ) or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if name == "multi_worker_mirrored":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def xla_in_effect(params: TrainingParams, strategy: tf.distribute.Strategy) -> bool:
    """Whether training compiles with XLA, logged on one line with the reason.

    ``jit_compile: auto`` is Keras's own choice: XLA where there is an accelerator,
    not on a CPU-only machine (21 % slower than TensorFlow's own kernels for the
    dense default at batch 256 on 2 cores: benchmarks/throughput_benchmark.py)
    nor under a tf.distribute strategy. Keras turns XLA off while op
    determinism is on (not every XLA kernel is deterministic); asking for XLA only
    where it applies keeps Keras from warning at every compile.

    Args:
        params: Training parameters (``jit_compile``, ``deterministic``).
        strategy: The distribution strategy training runs under.

    Returns:
        The ``jit_compile`` to compile with.
    """
    determinism = "on" if is_op_determinism_enabled() else "off"
    gpus = tf.config.list_logical_devices("GPU")
    wanted = params.jit_compile
    if wanted == "auto":
        distributed = strategy.num_replicas_in_sync > 1 or params.strategy != "default"
        wanted, reason = bool(gpus) and not distributed, "training.jit_compile auto"
        reason += ": " + (
            "no GPU" if not gpus else "distributed" if distributed else "GPU"
        )
    else:
        reason = "training.jit_compile"
    if wanted and params.strategy == "multi_worker_mirrored" and not gpus:
        wanted, reason = False, "TensorFlow has no XLA collectives on CPU"
    if wanted and determinism == "on":
        wanted, reason = False, "op determinism (training.deterministic) excludes it"
    steps = steps_per_execution(params)
    logger.info(
        "XLA %s (%s), op determinism %s, up to %d steps per execution%s",
        "on" if wanted else "off",
        reason,
        determinism,
        steps,
        ""
        if steps == params.steps_per_execution
        else " (Keras's multi-step loop fails under a tf.distribute strategy: "
        "keras-team/keras#19246)",
    )
    return wanted


def steps_per_execution(params: TrainingParams) -> int:
    """``training.steps_per_execution``, or 1 under a tf.distribute strategy, where
    Keras 3.15's multi-step loop fails (keras-team/keras#19246, open)."""
    return params.steps_per_execution if params.strategy == "default" else 1


def epoch_plan(params: TrainingParams, batches: int) -> tuple[int, int]:
    """The steps of an epoch over a split of ``batches`` batches, and of each
    execution (call into TensorFlow) in it.

    An epoch makes ``batches`` steps, or ``min_steps_per_epoch`` over a smaller
    split (which repeats), in as few executions of at most
    ``steps_per_execution`` steps as that takes, all of one size. The node trains
    on the split repeated without end, where Keras 3.15 runs every execution
    whole, so the epoch is rounded up to whole executions: by less than one step
    per execution (25 steps at up to 20 per execution: 2 of 13, 26 steps; 196: 10
    of 20, 200).
    """
    steps = max(batches, params.min_steps_per_epoch)
    executions = math.ceil(steps / steps_per_execution(params))
    per_execution = math.ceil(steps / executions)
    return executions * per_execution, per_execution


def learning_rate(
    params: TrainingParams, steps_per_epoch: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The optimizer's learning rate: a constant, or Keras's cosine decay from
    ``learning_rate`` to ``final_learning_rate`` over ``epochs`` epochs.

    The schedule follows the optimizer's step count, which checkpoints keep, so
    a resumed run continues on the same curve.
    """
    if params.learning_rate_schedule == "constant":
        return params.learning_rate
    return keras.optimizers.schedules.CosineDecay(
        params.learning_rate,
        decay_steps=params.epochs * steps_per_epoch,
        alpha=params.final_learning_rate / params.learning_rate,
    )


def even_first_batch(batch_size: int, num_examples: int, replicas: int) -> int:
    """A batch size whose first batch splits evenly over the replicas.

    Keras builds a distributed model by averaging the first batch across replicas,
    which fails when a split smaller than the batch size divides unevenly (90
    images over 2 replicas of 64 become 64 + 26). Such splits get a batch size of
    the largest multiple of ``replicas`` that they fill.

    Args:
        batch_size: The configured global batch size.
        num_examples: Examples in the split.
        replicas: Replicas in sync.

    Returns:
        ``batch_size``, or less for small splits.
    """
    if num_examples >= batch_size or replicas == 1:
        return batch_size
    return max(replicas, num_examples - num_examples % replicas)


def run_fingerprint(
    params: TrainingParams, train_split: ShardedArrays, validation_split: ShardedArrays
) -> str:
    """Identify a training configuration: its parameters and the data's content.

    The data counts by content, not by version folder, so that a command that
    ingests again before training (the default ``kedro run``) resumes too.
    """
    identity = {
        "params": params.model_dump(
            exclude={"checkpoint_dir", "checkpoint_retention_days"}
        ),
        "train": train_split.content_sha256 or str(train_split.directory),
        "validation": validation_split.content_sha256
        or str(validation_split.directory),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[
        :16
    ]


def _read_history(path: Path) -> dict[str, list[float]]:
    """Per-epoch history from the CSV log, the last row of any repeated epoch kept."""
    rows: dict[int, dict[str, str]] = {}
    with path.open(newline="", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            rows[int(row["epoch"])] = row
    epochs = sorted(rows)
    columns = [name for name in rows[epochs[0]] if name != "epoch"] if epochs else []
    history: dict[str, list[float]] = {"epoch": [epoch + 1 for epoch in epochs]}
    for name in columns:
        history[name] = [float(rows[epoch][name]) for epoch in epochs]
    return history


def build_model(
    image_shape: tuple[int, ...], params: TrainingParams, precision: str
) -> VAE:
    """``training.model`` built under the Keras dtype policy ``precision``.

    Under ``mixed_bfloat16`` the hidden layers compute in bfloat16; their
    variables, the Gaussian heads, the decoder's output and so the loss stay
    float32 (``models.architectures``). Keras has only a process-wide policy,
    so it is set for the build and restored.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        return build_vae(image_shape, seed=params.seed, **params.model.model_dump())
    finally:
        keras.config.set_dtype_policy(previous)


def _copy_weights(source: VAE, target: VAE) -> None:
    shapes = [tuple(w.shape) for w in source.get_weights()]
    expected = [tuple(w.shape) for w in target.get_weights()]
    if shapes != expected:
        raise TrainingError(
            "cannot warm-start: the initial model's weights do not match "
            "training.model (architecture, stochastic_layers, latent_dim or layer "
            "widths differ)"
        )
    target.set_weights(source.get_weights())


def train_vae(
    train_split: ShardedArrays,
    validation_split: ShardedArrays,
    params: TrainingParams,
    *,
    initial_model: VAE | None = None,
    keep_until_released: bool = False,
) -> tuple[VAE, dict[str, list[float]]]:
    """Train a VAE on the training split, validated on the validation split.

    Checkpoints after every epoch under ``checkpoint_dir/<fingerprint>``, where the
    fingerprint covers the parameters and the data's content: the same command
    resumes a run that was killed (also when it ingested the same data again into
    a new version), and any other configuration starts afresh. A run holds a lock
    on that folder, so a second run of the same configuration at once fails
    instead of sharing its checkpoint. The checkpoint is deleted once training
    ends (with ``keep_until_released``, the finished model stays in it until
    :func:`release_checkpoint` runs after the model is saved, and the same
    command uses it instead of training again), and so are those that killed
    runs left and nobody resumed for ``checkpoint_retention_days``.

    Args:
        train_split: Training images.
        validation_split: Validation images (early stopping on their loss).
        params: Training parameters.
        initial_model: A trained VAE of the same architecture to start from (warm
            start); None starts from a fresh initialisation.
        keep_until_released: Keep the finished model in the checkpoint folder
            (the pipelines' training nodes, whose model Kedro saves next).

    Returns:
        The trained model (best validation weights) and its per-epoch history.

    Raises:
        InputDataError: The splits come from different data versions.
        TrainingError: When the loss became NaN or infinite, the initial model
            does not match ``training.model``, or another run trains the same
            configuration now.
    """
    check_same_version(
        {"train_split": train_split, "validation_split": validation_split}
    )
    keras.utils.set_random_seed(params.seed)
    if params.deterministic:
        tf.config.experimental.enable_op_determinism()
    else:  # process-wide: an earlier training in this process may have set it
        disable_op_determinism()
    strategy = distribution_strategy(params.strategy)
    run_dir = Path(params.checkpoint_dir) / run_fingerprint(
        params, train_split, validation_split
    )
    backup_dir = run_dir / BACKUP_FOLDER  # the chief's, which every worker restores
    role = task_role()
    if not role.is_chief:  # its own history and lock, beside the chief's folder
        run_dir = run_dir.with_name(f"{run_dir.name}-{role.name}")
    try:
        with FileLock(run_dir / LOCK_FILE, parameter="training.checkpoint_dir"):
            trained = _train(
                train_split,
                validation_split,
                params,
                run_dir,
                backup_dir,
                initial_model,
                strategy,
                is_chief=role.is_chief,
                keep_finished=keep_until_released and role.is_chief,
            )
        if role.is_chief:
            remove_abandoned_checkpoints(
                run_dir.parent, older_than_days=params.checkpoint_retention_days
            )
        return trained
    except LockHeld as held:
        raise TrainingError(
            f"another training run ({held.holder}) is training this configuration "
            f"on the same data in {run_dir}; wait for it to finish"
        ) from None
    except (tf.errors.UnavailableError, tf.errors.AbortedError) as error:
        if params.strategy != "multi_worker_mirrored":
            raise
        raise TrainingError(
            f"{role.name}: another worker of the cluster stopped "
            f"({type(error).__name__}); start every worker again with the same "
            "command: training resumes from the chief's last checkpoint"
        ) from None


def _last_write(folder: Path) -> float:
    return max(path.stat().st_mtime for path in [folder, *folder.rglob("*")])


def remove_abandoned_checkpoints(
    checkpoint_dir: Path, *, older_than_days: float
) -> None:
    """Remove the checkpoints that killed runs left and nobody resumed for
    ``older_than_days`` (by their last write); one that a live run holds stays."""
    cutoff = time.time() - older_than_days * 86400
    for folder in checkpoint_dir.iterdir():
        if not folder.is_dir() or _last_write(folder) > cutoff:
            continue
        if remove_unless_held(folder):
            logger.info(
                "Removed %s, the checkpoint of an abandoned training run", folder
            )


def remove_unless_held(folder: Path) -> bool:
    """Remove a checkpoint folder unless a live run holds its lock (it is
    training there, or reading a finished model from it)."""
    try:
        with FileLock(folder / LOCK_FILE, parameter="training.checkpoint_dir"):
            shutil.rmtree(folder)
    except (LockHeld, InputDataError):
        return False
    return True


def _train(  # noqa: PLR0913
    train_split: ShardedArrays,
    validation_split: ShardedArrays,
    params: TrainingParams,
    run_dir: Path,
    backup_dir: Path,
    initial_model: VAE | None,
    strategy: tf.distribute.Strategy,
    *,
    is_chief: bool,
    keep_finished: bool,
) -> tuple[VAE, dict[str, list[float]]]:
    """:func:`train_vae`'s work, under the lock of its checkpoint folder."""
    finished = run_dir / FINISHED_MODEL
    if finished.exists():
        logger.info(
            "Training of this configuration finished in an earlier run whose model "
            "was not saved: using its model from %s",
            run_dir,
        )
        return keras.saving.load_model(finished), _read_history(run_dir / HISTORY_FILE)
    jit_compile = xla_in_effect(params, strategy)
    if backup_dir.exists():
        logger.info("Resuming training from the checkpoint in %s", backup_dir.parent)
    cache_limit = params.cache_in_memory_mb * 2**20
    replicas = strategy.num_replicas_in_sync
    train_batch = even_first_batch(params.batch_size, len(train_split), replicas)
    train_data = training_dataset(
        shard_files(train_split),
        batch_size=train_batch,
        seed=params.seed,
        shuffle_buffer=params.shuffle_buffer,
        cache_limit_bytes=cache_limit,
        dynamic_binarization=params.dynamic_binarization,
    )
    validation_data = evaluation_dataset(
        shard_files(validation_split),
        batch_size=even_first_batch(params.batch_size, len(validation_split), replicas),
        cache_limit_bytes=cache_limit,
        binarize_seed=params.seed if params.dynamic_binarization else None,
    )
    # An epoch is the unit of early stopping, warm-up and checkpoints; a small
    # split repeats within one so that it still makes min_steps_per_epoch steps.
    # The training data repeats without end for every split: over a finite
    # dataset Keras makes a new iterator each epoch, and on 50,000 in-memory
    # images about half of the epochs then began with a 2-second stall (on
    # epochs of under 3 seconds otherwise, 2 cores).
    steps, per_execution = epoch_plan(params, math.ceil(len(train_split) / train_batch))
    with strategy.scope():
        model = build_model(train_split.image_shape, params, params.precision)
        if initial_model is not None:
            _copy_weights(initial_model, model)
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate(params, steps)),
            jit_compile=jit_compile,
            steps_per_execution=per_execution,
        )
        # Keras builds the optimizer inside the first traced step when no
        # strategy is set, and TensorFlow then traces that step a second time
        # (variables created on a first call): 0.5 to 1 s of a small split's run.
        model.optimizer.build(model.trainable_variables)
    callbacks = [
        KLWarmup(params.kl_warmup_epochs),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.EarlyStopping(
            monitor="val_loss",
            patience=params.early_stopping_patience,
            restore_best_weights=True,
            start_from_epoch=params.kl_warmup_epochs,
        ),
        *(
            [
                keras.callbacks.ReduceLROnPlateau(
                    monitor="val_loss", factor=0.5, patience=params.reduce_lr_patience
                )
            ]
            if params.reduce_lr_patience
            else []
        ),
        keras.callbacks.CSVLogger(str(run_dir / HISTORY_FILE), append=True),
        EpochLogger(params.epochs),
        *([EpochProgress(params.epochs)] if is_terminal() else []),
        # double_checkpoint keeps the previous epoch's checkpoint to fall back on
        # when a kill -9 lands in the middle of writing the latest one.
        keras.callbacks.BackupAndRestore(str(backup_dir), double_checkpoint=True)
        if is_chief
        else RestoreFromChief(str(backup_dir)),
    ]
    model.fit(
        train_data,
        validation_data=validation_data,
        epochs=params.epochs,
        steps_per_epoch=steps,
        callbacks=callbacks,
        shuffle=False,  # the tf.data pipeline shuffles
        verbose=0,
    )
    history = _read_history(run_dir / HISTORY_FILE)
    for name in ("loss", "val_loss"):
        for epoch, value in zip(history["epoch"], history.get(name, []), strict=False):
            if not math.isfinite(value):
                shutil.rmtree(run_dir, ignore_errors=True)
                raise TrainingError(
                    f"training diverged: {name} became {value} at epoch {epoch}; "
                    "no model saved (try a lower training.learning_rate)"
                )
    if params.precision != "float32":  # what is saved and scored is float32
        trained = build_model(train_split.image_shape, params, "float32")
        trained.set_weights(model.get_weights())
        model = trained
    if keep_finished:
        model.save(finished)  # local disk, beside the checkpoint it replaces
        shutil.rmtree(backup_dir, ignore_errors=True)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    return model, history
