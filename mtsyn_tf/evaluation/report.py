"""Evaluation reports: markdown + self-contained HTML + ``results.json`` with every number.

A report is a list of sections, each with optional text, tables and images (paths
relative to the report directory). ``write_report`` writes into a directory that
``report_directory`` creates atomically, so readers see either the previous complete
report or the new complete one, never a mix.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import math
import os

import numpy as np

from mtsyn_tf.io_utils import atomic_directory, write_text_atomic


@dataclasses.dataclass
class Table:
    """A titled table; cells are numbers or strings (floats print with ``digits``)."""

    title: str
    columns: list
    rows: list
    digits: int = 3

    def __post_init__(self):
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(
                    f"Table {self.title!r}: every row needs {len(self.columns)} cells. "
                    f"Received: {row}"
                )

    def cell(self, value) -> str:
        if isinstance(value, (float, np.floating)):
            return "n/a" if not math.isfinite(value) else f"{float(value):.{self.digits}f}"
        return str(value)


@dataclasses.dataclass
class Section:
    heading: str
    text: str = ""
    tables: list = dataclasses.field(default_factory=list)
    images: list = dataclasses.field(default_factory=list)  # (caption, relative path)


def to_jsonable(value):
    """numpy → python; NaN/inf → None (strict JSON); drops numpy arrays larger than 64 items."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.size > 64:
            raise ValueError(f"Refusing to write an array of shape {value.shape} to results.json.")
        return to_jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def render_markdown(title: str, sections) -> str:
    lines = [f"# {title}", ""]
    for s in sections:
        lines += [f"## {s.heading}", ""]
        if s.text:
            lines += [s.text, ""]
        for t in s.tables:
            lines += [f"**{t.title}**", ""]
            lines.append("| " + " | ".join(str(c) for c in t.columns) + " |")
            lines.append("|" + "---|" * len(t.columns))
            lines += ["| " + " | ".join(t.cell(v) for v in row) + " |" for row in t.rows]
            lines.append("")
        for cap, rel in s.images:
            lines += [f"![{cap}]({rel})", ""]
    return "\n".join(lines)


def render_html(title: str, sections, root: str, embed: bool = True) -> str:
    """One HTML page; images embedded as data URIs (``embed``) or linked relatively."""
    esc = html.escape
    out = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title><style>body{{font-family:sans-serif;max-width:1100px;"
        "margin:auto}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #bbb;"
        "padding:3px 8px;text-align:right}th{background:#eee}img{max-width:100%}</style>",
        f"</head><body><h1>{esc(title)}</h1>",
    ]
    for s in sections:
        out.append(f"<h2>{esc(s.heading)}</h2>")
        if s.text:
            out.append(f"<p>{esc(s.text)}</p>")
        for t in s.tables:
            out.append(f"<table><caption><b>{esc(t.title)}</b></caption><tr>")
            out += [f"<th>{esc(str(c))}</th>" for c in t.columns]
            out.append("</tr>")
            for row in t.rows:
                out.append("<tr>" + "".join(f"<td>{esc(t.cell(v))}</td>" for v in row) + "</tr>")
            out.append("</table>")
        for cap, rel in s.images:
            src = rel
            if embed:
                with open(os.path.join(root, rel), "rb") as f:
                    src = "data:image/png;base64," + base64.b64encode(f.read()).decode()
            out.append(f"<figure><img src='{src}' alt='{esc(cap)}'><figcaption>{esc(cap)}"
                       "</figcaption></figure>")  # fmt: skip
    out.append("</body></html>")
    return "\n".join(out)


def write_report(directory: str, title: str, sections, results: dict) -> dict:
    """Writes ``report.md``, ``report.html`` and ``results.json`` into ``directory``.

    Every image a section names must already exist there (checked first, so a missing
    figure fails before anything is written).
    """
    for s in sections:
        for _, rel in s.images:
            if os.path.isabs(rel) or not os.path.isfile(os.path.join(directory, rel)):
                raise ValueError(
                    f"Report image must be an existing path relative to {directory}. "
                    f"Received: {rel!r}"
                )
    payload = json.dumps(to_jsonable(results), indent=2, sort_keys=True, allow_nan=False)
    files = {
        "report.md": render_markdown(title, sections),
        "report.html": render_html(title, sections, directory),
        "results.json": payload,
    }
    return {
        name: write_text_atomic(os.path.join(directory, name), text) for name, text in files.items()
    }


def report_directory(output_dir: str):
    """Context manager: a temporary directory renamed onto ``output_dir`` on success."""
    return atomic_directory(output_dir, overwrite=True)
