"""The demo's report: markdown + HTML with learning curves, predictions and metrics."""

from __future__ import annotations

import html
import os
import shutil

import numpy as np

from mtsyn_tf.demo.plots import plot_curves, read_history
from mtsyn_tf.io_utils import write_png, write_text_atomic
from mtsyn_tf.models.presets import ALEXNET_TAPS, VGG16_TAPS


def prediction_rows(model, batch: dict, count: int) -> np.ndarray:
    """input | depth gt | depth pred | normals gt | normals pred | contour gt | contour pred."""
    from mtsyn_tf.models import to_physical
    from mtsyn_tf.visualize import (
        colorize_contour,
        colorize_depth,
        colorize_normals,
        inverse_depth_range,
        to_uint8_rgb,
    )

    images = batch["image"][:count]
    pred = {k: np.asarray(v) for k, v in to_physical(model(images, training=False)).items()}
    rows = []
    for i in range(int(images.shape[0])):
        gt_depth = np.asarray(batch["depth"][i])[..., 0]
        valid = np.asarray(batch["valid"][i])[..., 0] > 0
        near_far = inverse_depth_range(gt_depth, valid)
        tiles = [
            to_uint8_rgb(images[i]),
            colorize_depth(gt_depth, valid, depth_range=near_far),
            colorize_depth(pred["depth"][i][..., 0], depth_range=near_far),
            colorize_normals(np.asarray(batch["normals"][i])),
            colorize_normals(pred["normals"][i]),
            colorize_contour(np.asarray(batch["contour"][i])[..., 0]),
            colorize_contour(pred["contour"][i][..., 0]),
        ]
        rows.append(
            np.concatenate(
                [np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255) for t in tiles], axis=1
            )
        )
    return np.concatenate(rows, axis=0)


def _figures(summary: dict, paths: dict, run_cfg) -> dict:
    from mtsyn_tf.data import pipeline
    from mtsyn_tf.export.checkpoint import load_model_from_checkpoint

    out = paths["report"]
    figures = {}
    history = read_history(os.path.join(paths["run"], "history.csv"))
    losses = {
        k: history[k]
        for k in ("loss_contour", "loss_depth", "loss_normals", "loss_adv", "loss_d")
        if k in history
    }
    figures["losses"] = write_png(
        os.path.join(out, "learning_curves.png"), plot_curves(losses, "training losses per epoch")
    )
    accuracy = {k: history[k] for k in ("d_acc_synthetic", "d_acc_real") if k in history}
    if accuracy:
        figures["discriminator"] = write_png(
            os.path.join(out, "discriminator_accuracy.png"),
            plot_curves(accuracy, "discriminator patch accuracy"),
        )
    model, info = load_model_from_checkpoint(paths["run"])
    batch = next(
        iter(
            pipeline.make_eval_dataset(
                paths["synthetic"], run_cfg.eval_split, batch_size=6, image_size=model.image_size
            )
        )
    )
    batch = dict(batch)
    batch["image"] = info["input_contract"](batch["image"])
    figures["predictions"] = write_png(
        os.path.join(out, "heldout_predictions.png"), prediction_rows(model, batch, 6)
    )
    grid = os.path.join(paths["synthetic"], "sample_grid.png")
    if os.path.exists(grid):
        figures["data"] = shutil.copyfile(grid, os.path.join(out, "synthetic_samples.png"))
    return {k: os.path.basename(v) for k, v in figures.items()}


def _metrics_table(rows) -> list[list[str]]:
    table = [["task", "metric", "better if", "untrained", "trained", "verdict"]]
    for r in rows:
        table.append(
            [
                r["task"],
                r["metric"],
                r["direction"],
                f"{r['untrained']:.4g}",
                f"{r['trained']:.4g}",
                "better" if r["better"] else "WORSE",
            ]
        )
    return table


def _schedule_text(cfg: dict) -> str:
    """'lr 0.002, cosine decay after 5 % warmup' (a summary without the fields: the old 1e-3 step)."""
    lr = cfg.get("learning_rate", 1e-3)
    if cfg.get("lr_schedule", "step") == "cosine":
        return f"lr {lr:g}, cosine decay after {100 * cfg.get('warmup_fraction', 0.0):.0f} % warmup"
    return f"lr {lr:g}, ×0.1 at 60 % and 90 % of training"


def _markdown(summary: dict, figures: dict) -> str:
    lines = ["# mtsyn_tf demo report", ""]
    cfg = summary["config"]
    lines += [
        f"Preset `{cfg['preset']}`, {cfg['num_scenes']} training + {cfg['num_test_scenes']} held-out rendered scenes "
        f"({cfg['resolution']}², {cfg['spp']} spp), real domain: photos embedded in scikit-image / scikit-learn. "
        f"Trained {cfg['epochs']}×{cfg['steps_per_epoch']} steps at batch {cfg['batch_size']}, "
        f"{_schedule_text(cfg)}, in {summary['train_seconds']:.0f} s.",
        "",
        "## Held-out synthetic scenes: trained vs untrained",
        "",
        "Depth in metres (abs-rel, RMSE, δ<1.25), normals in degrees (mean/median angle, % within 22.5°), "
        "contours as pixel-exact AP and F at 0.5 (the BSDS ODS/OIS are in `scripts/evaluate.py`).",
        "",
    ]
    table = _metrics_table(summary["comparison"])
    lines.append("| " + " | ".join(table[0]) + " |")
    lines.append("|" + "---|" * len(table[0]))
    lines += ["| " + " | ".join(row) + " |" for row in table[1:]]
    lines += ["", "## Learning curves", "", f"![losses]({figures['losses']})", ""]
    if "discriminator" in figures:
        lines += [f"![discriminator]({figures['discriminator']})", ""]
    lines += [
        "## Predictions on held-out scenes",
        "",
        "Columns: input (as the model sees it) | depth GT | depth | normals GT | normals | contours GT | contours.",
        "",
        f"![predictions]({figures['predictions']})",
        "",
    ]
    lines += _evaluation_sections(summary.get("evaluation", {}))
    if "data" in figures:
        lines += [
            "## Training data (RGB | depth | normals | contours)",
            "",
            f"![data]({figures['data']})",
            "",
        ]
    lines += ["## Where everything is", ""]
    lines += [f"- **{k}**: `{v}`" for k, v in summary["artifacts"].items()]
    return "\n".join(lines) + "\n"


def _evaluation_sections(evaluation: dict) -> list[str]:
    """Domain-gap and motorcycle tables from the offline evaluation (evaluation/report.html)."""
    lines = []
    gap = evaluation.get("domain_gap") or {}
    if gap:
        present = {t for per_model in gap.values() for t in per_model}
        taps = [t for t in (*ALEXNET_TAPS, *VGG16_TAPS) if t in present]
        lines += [
            "## Domain gap: proxy A-distance, held-out synthetic vs embedded real photos",
            "",
            "PAD = 2(1 − 2ε) of a linear domain classifier (lower = domains harder to tell apart).",
            "",
            "| model | " + " | ".join(taps) + " |",
            "|" + "---|" * (len(taps) + 1),
        ]
        for name, per_tap in gap.items():
            cells = [f"{per_tap[t]['pad']:.3f}" if t in per_tap else "" for t in taps]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    moto = evaluation.get("motorcycle") or {}
    if moto:
        lines += [
            "## Metric depth on a real photo (Middlebury motorcycle, scikit-image)",
            "",
            "| model | scaling | abs_rel | rmse (m) | delta1 |",
            "|---|---|---|---|---|",
        ]
        for name, result in moto.items():
            for scaling in ("raw", "median_scaled"):
                r = result.get(scaling, {})
                if r:
                    lines.append(
                        f"| {name} | {scaling} | {r['abs_rel']:.3f} | {r['rmse']:.3f} | {r['delta1']:.3f} |"
                    )
        lines.append("")
    if lines:
        lines += [
            "Qualitative sheets (conv1 filters, nearest neighbours, real-photo predictions): "
            "[evaluation/report.html](evaluation/report.html)",
            "",
        ]
    return lines


def _html(markdown: str) -> str:
    """A small, dependency-free rendering of the markdown this module writes."""
    body, in_table = [], False
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            if set("".join(cells)) <= {"-"}:
                continue
            tag = "th" if not in_table else "td"
            if not in_table:
                body.append("<table>")
                in_table = True
            body.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("!["):
            alt, src = line[2:].split("](")
            body.append(
                f'<p><img alt="{html.escape(alt)}" src="{html.escape(src.rstrip(")"))}"></p>'
            )
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("- "):
            body.append(f"<li>{html.escape(line[2:]).replace('**', '')}</li>")
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    if in_table:
        body.append("</table>")
    style = "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}img{max-width:100%}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>mtsyn_tf demo</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n"


def write_demo_report(summary: dict, paths: dict, run_cfg) -> dict:
    """Writes report.md and report.html (and their PNGs) into ``paths['report']``."""
    os.makedirs(paths["report"], exist_ok=True)
    figures = _figures(summary, paths, run_cfg)
    markdown = _markdown(summary, figures)
    write_text_atomic(os.path.join(paths["report"], "report.md"), markdown)
    write_text_atomic(os.path.join(paths["report"], "report.html"), _html(markdown))
    return {"report": os.path.join(paths["report"], "report.md"), "figures": figures}
