"""Per-task gradient norms on the shared base B: do the λ balance the tasks?

The paper chooses λe, λd, λs "to scale their gradients to have similar magnitude". This
measures exactly that on a batch: for each term t of L_BH, ‖∇_B (λ_t · L_t)‖ (weighted)
and ‖∇_B L_t‖ (unweighted), where B is every weight shared by the tasks (base network +
bottleneck, ``model.backbone``) and the losses are the trainer's (same functions, same
training-mode forward, same input transform). ``scripts/diagnose.py
--what=gradient_balance`` is the command-line front end; README "Loss scales" the
derivation.
"""

from __future__ import annotations

import math

import tensorflow as tf

from mtsyn_tf import losses
from mtsyn_tf.data import augment
from mtsyn_tf.trainer.config import TrainerConfig

# The bound the project holds at initialisation (README "Loss scales"): every pair of
# weighted task gradients on B within this factor.
BALANCE_BOUND = 3.0


def _global_norm(grads) -> float:
    squares = [tf.reduce_sum(tf.square(tf.cast(g, tf.float64))) for g in grads if g is not None]
    return math.sqrt(float(tf.add_n(squares))) if squares else 0.0


def task_gradient_norms(model, synthetic: dict, config: TrainerConfig, discriminator=None, seed=0):
    """‖∇_B‖ of each term of L_BH on one synthetic batch, weighted and unweighted.

    Args:
        model: a MultiTaskNet.
        synthetic: ``{"image", "depth", "normals", "contour", "valid"}`` batch (training
            layout, docs/CONTRACTS.md), RGB: the run's input transform is applied here.
        config: the run's TrainerConfig (tasks, λ, grayscale, contour normalisation, D's
            tap and feature kind).
        discriminator: D; with it (and ``config.adapt``) the adversarial term is measured too.
        seed: stateless seed of the grey-channel draw.

    Returns:
        ``{"weighted": {term: norm}, "unweighted": {term: norm}, "loss": {term: value},
        "weights": {term: λ}}``. BatchNorm runs in training mode, as in a training step;
        its moving statistics are restored afterwards, so the model is left unchanged.
    """
    config = config.validate(model.preset["arch"], model.tasks)
    images = tf.convert_to_tensor(synthetic["image"], tf.float32)
    if config.grayscale:
        images = augment.random_grayscale_channel(images, tf.constant([seed, 0], tf.int64))
    tap = config.da_tap or model.preset["da_tap"]
    use_adversarial = discriminator is not None and config.adapt
    saved = [(v, tf.identity(v)) for v in model.non_trainable_variables]
    if use_adversarial:
        saved += [(v, tf.identity(v)) for v in discriminator.non_trainable_variables]
    task_losses = losses.task_losses(config.tasks, config.contour_normalization)
    terms = {}
    with tf.GradientTape(persistent=True) as tape:
        taps, predictions = model.forward(
            images, training=True, pre_activation=config.disc_features == "pre_activation"
        )
        predictions = {k: tf.cast(v, tf.float32) for k, v in predictions.items()}
        for task in config.tasks:
            terms[task] = tf.reduce_mean(task_losses[task](synthetic, predictions[task]))
        if use_adversarial:
            logits = discriminator(taps[tap], training=True)
            terms["adversarial"] = tf.reduce_mean(
                losses.patch_bce_per_example(tf.cast(logits, tf.float32), losses.REAL)
            )
    variables = model.backbone.trainable_variables
    report = {"weighted": {}, "unweighted": {}, "loss": {}, "weights": {}}
    for name, value in terms.items():
        weight = float(config.loss_weights.get(name, 0.0))
        norm = _global_norm(tape.gradient(value, variables))
        report["unweighted"][name] = norm
        report["weighted"][name] = weight * norm
        report["loss"][name] = float(value)
        report["weights"][name] = weight
    del tape
    for variable, value in saved:
        variable.assign(value)
    return report


def balance_ratio(report: dict, terms=None) -> float:
    """Largest / smallest weighted norm over the task terms with λ > 0 (1 = balanced)."""
    names = terms or [
        t for t in report["weighted"] if t != "adversarial" and report["weights"][t] > 0
    ]
    values = [report["weighted"][t] for t in names]
    if not values:
        raise ValueError(f"No task term with λ > 0 to compare. Received: {report['weights']}")
    smallest = min(values)
    return math.inf if smallest == 0 else max(values) / smallest


def format_report(report: dict) -> str:
    """A plain-text table: term, λ, loss, ‖∇_B‖ unweighted and weighted, ratio to the largest."""
    largest = max((v for t, v in report["weighted"].items() if t != "adversarial"), default=0.0)
    lines = [
        f"{'term':<12} {'lambda':>8} {'loss':>11} {'|grad_B| raw':>13} "
        f"{'|grad_B| x lambda':>18} {'/ largest task':>15}"
    ]
    for name in report["weighted"]:
        ratio = report["weighted"][name] / largest if largest > 0 else math.nan
        lines.append(
            f"{name:<12} {report['weights'][name]:>8.3g} {report['loss'][name]:>11.4g} "
            f"{report['unweighted'][name]:>13.4g} {report['weighted'][name]:>18.4g} "
            f"{ratio:>15.3g}"
        )
    lines.append(
        f"task balance (largest / smallest weighted task gradient): {balance_ratio(report):.3g} "
        f"(bound {BALANCE_BOUND:g})"
    )
    return "\n".join(lines)


def first_training_batch(synthetic_dir, batch_size, image_size, config, split="train", seed=0):
    """One batch as training draws it (crop, flip, edge-poor resampling; RGB images)."""
    from mtsyn_tf.data import pipeline

    ds = pipeline.make_synthetic_training_dataset(
        synthetic_dir,
        image_size,
        split,
        seed=seed,
        deterministic=True,
        grayscale=False,  # applied by task_gradient_norms, as the trainer does in-step
        min_edge_pixels=config.min_edge_pixels,
    )
    return next(iter(ds.batch(batch_size, drop_remainder=True)))


def measure(
    synthetic_dir: str,
    preset="paper_alexnet",
    config: TrainerConfig | None = None,
    checkpoint: str | None = None,
    batch_size: int = 8,
    split: str = "train",
    seed: int = 0,
):
    """Builds (or restores) model and D, draws a batch, returns (report, info).

    With ``checkpoint`` (a training workdir or checkpoint prefix) the run's preset and
    TrainerConfig come from its config.json and model and D from its checkpoint;
    otherwise ``preset`` and ``config`` at a seeded initialisation.
    """
    import json

    import keras

    from mtsyn_tf.export.checkpoint import load_model_from_checkpoint
    from mtsyn_tf.models import build_discriminator, build_multitask_model

    config = config or TrainerConfig()
    keras.utils.set_random_seed(seed)
    if checkpoint:
        model, info = load_model_from_checkpoint(checkpoint)
        with open(info["config"]) as f:
            run = json.load(f)
        if "trainer" in run:
            config = TrainerConfig.from_dict(run["trainer"])
        preset_dict = model.preset
        tap = config.da_tap or preset_dict["da_tap"]
        discriminator = build_discriminator(preset_dict, da_tap=tap)
        discriminator(model.backbone(tf.zeros([1, model.image_size, model.image_size, 3]))[tap])
        status = tf.train.Checkpoint(discriminator=discriminator).restore(info["checkpoint"])
        status.expect_partial()
        source = info["checkpoint"]
    else:
        model = build_multitask_model(preset)
        tap = config.da_tap or model.preset["da_tap"]
        discriminator = build_discriminator(model.preset, da_tap=tap)
        source = "initialisation"
    batch = first_training_batch(
        synthetic_dir, batch_size, model.image_size, config, split=split, seed=seed
    )
    report = task_gradient_norms(model, batch, config, discriminator, seed=seed)
    info = {
        "preset": model.preset.get("name", model.preset["arch"]),
        "source": source,
        "batch_size": batch_size,
        "edge_share": float(tf.reduce_mean(batch["contour"])),
        "config": config.to_dict(),
        "balance_ratio": balance_ratio(report),
    }
    return report, info
