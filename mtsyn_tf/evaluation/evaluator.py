"""What every evaluation protocol is: typed settings, then ``run(target, report_dir)``.

An evaluator is a frozen dataclass whose fields are the protocol's settings (what
``scripts/evaluate.py`` exposes as flags of the same names), checked against their type
hints when it is built, so a wrong value fails with one line before any model is loaded.
``run`` returns ``(results, sections)``: the protocol's numbers (JSON-ready) and the
report sections showing them; figures are written under ``report_dir`` and named in the
sections relative to it. ``EvalRun`` is what is evaluated: a training run (workdir or
checkpoint prefix, loaded once, on first use) or a model already in memory.
``mtsyn_tf.evaluation.registry`` holds the table of evaluators and ``evaluate()``.
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import types
import typing
from typing import ClassVar


def _matches(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    hint = origin or hint  # tuple[str, ...] → tuple, dict[str, str] → dict
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    return isinstance(value, hint)


class Evaluator:
    """Base of every protocol; subclasses are ``@dataclasses.dataclass(frozen=True)``.

    Class attributes: ``name`` (the registry key) and ``title`` (the heading of a report
    of this protocol alone).
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not _matches(value, hints[field.name]):
                raise ValueError(
                    f"Protocol {self.name!r}: {field.name} must be {field.type}. "
                    f"Received: {field.name}={value!r}"
                )

    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def require(self, key: str, what: str) -> None:
        """Fails (before anything is loaded) when the setting ``key`` was not given."""
        if getattr(self, key) in (None, "", ()):
            raise ValueError(
                f"Protocol {self.name!r} needs {key} ({what}). Received: {key}={getattr(self, key)!r}"
            )

    def one_of(self, key: str, allowed) -> None:
        if getattr(self, key) not in allowed:
            raise ValueError(
                f"Protocol {self.name!r}: {key} must be one of {tuple(allowed)}. "
                f"Received: {key}={getattr(self, key)!r}"
            )

    def run(self, target: EvalRun, report_dir: str) -> tuple[dict, list]:
        raise NotImplementedError(f"{type(self).__name__} must implement run().")


class EvalRun:
    """A training run (``path``: workdir or checkpoint prefix) or an in-memory ``model``.

    The run's model is loaded on first use and shared by every protocol of one
    ``evaluate()`` call; ``info`` is ``load_model_from_checkpoint``'s (``checkpoint``,
    ``preset``, ``input_contract``, ``grayscale``).
    """

    def __init__(self, path=None, model=None, input_contract=None, expected_preset=None):
        if (path is None) == (model is None):
            raise ValueError(
                "Evaluate exactly one of a run directory / checkpoint and a model. "
                f"Received: path={path!r}, model={type(model).__name__ if model else None}"
            )
        self.path = None if path is None else os.fspath(path)
        self.expected_preset = expected_preset
        self._loaded = None
        self._shared = {}
        if model is not None:
            from mtsyn_tf.models.preprocessor import InputContract

            contract = input_contract or InputContract("rgb")
            info = {"checkpoint": None, "config": None, "preset": model.preset,
                    "input_contract": contract, "grayscale": contract.grayscale}  # fmt: skip
            self._loaded = (model, info)

    @classmethod
    def of(cls, run, expected_preset=None) -> EvalRun:
        """``run`` as an EvalRun: an EvalRun, a path (str / PathLike) or a MultiTaskNet."""
        if isinstance(run, EvalRun):
            return run
        if isinstance(run, (str, os.PathLike)):
            return cls(path=run, expected_preset=expected_preset)
        if hasattr(run, "predict_physical") and hasattr(run, "preset"):
            return cls(model=run)
        raise ValueError(
            "Expected a run directory, a checkpoint prefix or a MultiTaskNet. "
            f"Received: {type(run).__name__}"
        )

    @property
    def name(self) -> str:
        if self.path is None:
            return "model"
        return os.path.basename(os.path.normpath(self.path)) or "run"

    def _load(self):
        if self._loaded is None:
            from mtsyn_tf.evaluation.loading import load_run_model

            self._loaded = load_run_model(self.path, expected_preset=self.expected_preset)
        return self._loaded

    @property
    def model(self):
        return self._load()[0]

    @property
    def info(self) -> dict:
        return self._load()[1]

    @property
    def input_contract(self):
        return self.info["input_contract"]

    def shared(self, key, compute):
        """``compute()`` once per ``key`` for this run: the inputs several protocols of one
        ``evaluate()`` call read (compared models, held-out batch, real crops)."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]

    def require_path(self, protocol: str) -> str:
        if self.path is None:
            raise ValueError(
                f"Protocol {protocol!r} reads a run directory; an in-memory model has none. "
                "Received: a model"
            )
        return self.path

    def record(self) -> dict:
        """What results.json says about the evaluated run (no load just for this)."""
        out = {"name": self.name, "path": self.path}
        if self._loaded is not None:
            out.update(checkpoint=self.info["checkpoint"], preset=self.info["preset"])
        return out
