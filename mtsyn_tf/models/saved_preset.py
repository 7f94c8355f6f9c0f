"""Saved presets: a trained model as a directory users can load (keras-hub layout).

``MultiTaskNet.save_to_preset(directory)`` writes, atomically (a hidden temporary
directory renamed into place, ``io_utils.atomic_directory``):

  * ``config.json``: ``{"format_version", "architecture", "tasks", "module", "class_name",
    "registered_name", "config": MultiTaskNet.get_config()}``; ``config["preset"]`` is the
    typed preset's dict view (the same form a run records as ``resolved_preset``);
  * ``model.weights.h5``: every weight, BatchNorm statistics included (``save_weights``);
  * ``preprocessor.json``: the serialised ``InputContract`` the model must be fed through;
  * ``metadata.json``: mtsyn_tf / Keras / TensorFlow versions, parameter count, date, and
    the training run it came from (settings, checkpoint, git commit) when known.

``MultiTaskNet.from_preset(path_or_name)`` reads such a directory, a training run (workdir,
checkpoints directory or checkpoint prefix; see ``run_checkpoint``) or a built-in preset
name. Files from another major format version, of another architecture than asked for,
or missing or corrupt, raise a one-line ``ValueError`` naming the file.

The model class is passed in (``model_cls``), so this module does not import it.
"""

from __future__ import annotations

import datetime
import json
import os
from importlib import metadata as importlib_metadata
from types import MappingProxyType

import keras

from mtsyn_tf import __version__
from mtsyn_tf.io_utils import atomic_directory
from mtsyn_tf.models.architectures import ARCHITECTURES
from mtsyn_tf.models.preprocessor import InputContract
from mtsyn_tf.models.presets import PRESETS, ModelConfig, resolve_preset
from mtsyn_tf.models.run_checkpoint import build_model, check_expected, restore_run

# Major: files an older reader cannot read (bumped when names or layout change); minor:
# additions a reader of the same major ignores.
FORMAT_VERSION = "1.0"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
PREPROCESSOR_FILE = "preprocessor.json"
METADATA_FILE = "metadata.json"
PRESET_FILES = (CONFIG_FILE, WEIGHTS_FILE, PREPROCESSOR_FILE, METADATA_FILE)


# === Writing ===
def save_to_preset(model, directory: str, input_contract=None, overwrite: bool = False) -> str:
    """Writes ``model`` as a saved preset directory; returns its absolute path.

    Args:
        model: a MultiTaskNet (built here if it is not yet).
        directory: the preset directory to create; its parent is created if missing.
        input_contract: the ``InputContract`` the model must be fed through; default: the
            one it was loaded with (``model.input_contract``). A model built in this process
            has none recorded and needs it passed explicitly.
        overwrite: replace an existing directory (else it is refused before writing).
    """
    contract = input_contract if input_contract is not None else model.input_contract
    if not isinstance(contract, InputContract):
        raise ValueError(
            "The model's input contract is unknown (it was built, not loaded from a run or "
            "preset): pass input_contract=InputContract('rgb' or 'grayscale'), the colour "
            f"mode it trained on. Received: input_contract={contract!r}"
        )
    if not model.built:
        model.build_for_size()
    config = {
        "format_version": FORMAT_VERSION,
        "architecture": model.config.arch,
        "tasks": list(model.config.tasks),
        **keras.saving.serialize_keras_object(model),
    }
    info = model.load_info or {}
    meta = {
        "format_version": FORMAT_VERSION,
        "mtsyn_tf_version": __version__,
        "keras_version": keras.__version__,
        "tensorflow_version": _version("tensorflow"),
        "parameter_count": int(model.count_params()),
        "date_saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": info.get("source"),
        "run": info.get("run"),
    }
    with atomic_directory(directory, overwrite=overwrite) as tmp:
        model.save_weights(os.path.join(tmp, WEIGHTS_FILE))
        for name, payload in (
            (CONFIG_FILE, config),
            (PREPROCESSOR_FILE, keras.saving.serialize_keras_object(contract)),
            (METADATA_FILE, meta),
        ):
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                json.dump(payload, f, indent=2, sort_keys=True, default=str)
    return os.path.abspath(directory)


def _version(package: str) -> str | None:
    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        return None


# === Reading ===
def is_saved_preset(path: str) -> bool:
    """A directory holding any file of the preset layout other than config.json (a run's
    workdir has a config.json too), or a config.json written by ``save_to_preset``."""
    if not os.path.isdir(path):
        return False
    if any(os.path.exists(os.path.join(path, f)) for f in PRESET_FILES[1:]):
        return True
    try:
        with open(os.path.join(path, CONFIG_FILE), encoding="utf-8") as f:
            return "format_version" in json.load(f)
    except (OSError, UnicodeDecodeError, ValueError, TypeError):
        return False


def load_preset(
    model_cls,
    path_or_name: str,
    architecture: str | None = None,
    expected_preset: str | dict | None = None,
    load_weights: bool = True,
):
    """``(model, info)`` from a saved preset, a training run or a built-in preset name.

    Args:
        model_cls: the model class (``MultiTaskNet``).
        path_or_name: a ``save_to_preset`` directory; a training workdir, checkpoints
            directory or checkpoint prefix; or a built-in preset name (``preset_names()``),
            which has no published weights and needs ``load_weights=False``.
        architecture: raise unless the model is of this arch (``"alexnet"``, ``"vgg16"``).
        expected_preset: raise unless the model has this preset's shapes (name or dict).
        load_weights: False gives the recorded model at initialisation.

    Returns:
        The model (``model.input_contract`` and ``model.load_info`` set) and the info dict
        of ``run_checkpoint.restore_run`` plus ``source``, ``kind`` (``"preset"``, ``"run"``
        or ``"builtin"``) and ``metadata`` (a saved preset's metadata.json, else None).
    """
    path = os.path.abspath(os.fspath(path_or_name))
    if isinstance(path_or_name, str) and path_or_name in PRESETS and not os.path.exists(path):
        model, info = _builtin(model_cls, path_or_name, load_weights)
        check_expected(model.config, f"preset {path_or_name!r}", expected_preset, architecture)
    elif not os.path.exists(path) and not os.path.exists(path + ".index"):
        raise ValueError(
            "Checkpoint not found: expected a saved preset directory, a training workdir, its "
            "checkpoints/ directory, a checkpoint prefix such as <workdir>/checkpoints/ckpt-3, "
            f"or a built-in preset name {sorted(PRESETS)}. Received: {path_or_name}"
        )
    elif is_saved_preset(path):
        model, info = _saved(model_cls, path, architecture, expected_preset, load_weights)
    else:
        model, info = restore_run(model_cls, path, expected_preset, architecture, load_weights)
        info.update(kind="run", metadata=None)
    info["source"] = path if info["kind"] != "builtin" else path_or_name
    model._load_info = MappingProxyType(info)
    return model, info


def _builtin(model_cls, name: str, load_weights: bool):
    if load_weights:
        raise ValueError(
            f"The built-in preset {name!r} has no trained weights (none are published): pass "
            "load_weights=False for a freshly initialised model, or a saved preset directory "
            f"or training workdir. Received: {name}"
        )
    config = resolve_preset(name)
    contract = InputContract("rgb")  # untrained: nothing to match; colour assumes nothing
    return build_model(model_cls, config), {
        "kind": "builtin",
        "checkpoint": None,
        "config": None,
        "preset": config.to_dict(),
        "input_contract": contract,
        "grayscale": False,
        "run": None,
        "metadata": None,
    }


def _saved(model_cls, directory, architecture, expected_preset, load_weights):
    config_path = os.path.join(directory, CONFIG_FILE)
    recorded = _read_json(directory, CONFIG_FILE)
    meta = _read_json(directory, METADATA_FILE)
    _check_format(recorded, config_path, meta)
    config = _model_config(recorded, config_path)
    check_expected(config, config_path, expected_preset, architecture)
    contract = _input_contract(directory)
    weights = os.path.join(directory, WEIGHTS_FILE)
    if not os.path.isfile(weights):
        raise ValueError(_missing(directory, WEIGHTS_FILE))
    model = build_model(model_cls, config)
    if load_weights:
        _load_weights(model, weights)
    return model, {
        "kind": "preset",
        "checkpoint": weights,
        "config": config_path,
        "preset": config.to_dict(),
        "input_contract": contract,
        "grayscale": contract.grayscale,
        "run": meta.get("run"),
        "metadata": meta,
    }


def _missing(directory: str, name: str) -> str:
    return (
        f"The saved preset lacks {name}; expected {', '.join(PRESET_FILES)} (written by "
        f"save_to_preset). Received: {os.path.join(directory, name)}"
    )


def _read_json(directory: str, name: str) -> dict:
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        raise ValueError(_missing(directory, name))
    try:
        with open(path, encoding="utf-8") as f:
            payload = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        reason = " ".join(str(err).split())
        raise ValueError(
            f"Corrupt {name} in the saved preset ({reason}). Received: {path}"
        ) from None
    if not isinstance(payload, dict):
        raise ValueError(
            f"Corrupt {name}: expected a JSON object, found a {type(payload).__name__}. "
            f"Received: {path}"
        )
    return payload


def _check_format(recorded: dict, config_path: str, meta: dict) -> None:
    version = recorded.get("format_version")
    try:
        major = int(str(version).split(".")[0])
    except ValueError:
        raise ValueError(
            f"Corrupt config.json: format_version must be 'MAJOR.MINOR'. Received: "
            f"format_version={version!r} in {config_path}"
        ) from None
    if major != int(FORMAT_VERSION.split(".")[0]):
        raise ValueError(
            f"{config_path} was saved in preset format {version} (mtsyn_tf "
            f"{meta.get('mtsyn_tf_version')}); this mtsyn_tf {__version__} reads format "
            f"{FORMAT_VERSION.split('.')[0]}.x. Convert the run again with this version. "
            f"Received: format_version={version!r}"
        )
    if recorded.get("class_name") != "MultiTaskNet":
        raise ValueError(
            f"{config_path} describes a {recorded.get('class_name')!r}, not a mtsyn_tf "
            f"MultiTaskNet. Received: class_name={recorded.get('class_name')!r}"
        )


def _model_config(recorded: dict, config_path: str) -> ModelConfig:
    arch = recorded.get("architecture")
    if arch not in ARCHITECTURES:
        raise ValueError(
            f"{config_path} holds an architecture this mtsyn_tf does not know; expected one "
            f"of {sorted(ARCHITECTURES)}. Received: architecture={arch!r}"
        )
    model_config = recorded.get("config")
    preset = model_config.get("preset") if isinstance(model_config, dict) else None
    try:
        config = ModelConfig.from_dict(preset, source="preset")
    except ValueError as err:
        raise ValueError(f"Corrupt config.json: {err} (in {config_path})") from None
    if config.arch != arch or list(config.tasks) != recorded.get("tasks"):
        raise ValueError(
            f"Corrupt config.json: architecture/tasks ({arch}, {recorded.get('tasks')}) "
            f"disagree with its preset ({config.arch}, {list(config.tasks)}). "
            f"Received: {config_path}"
        )
    return config


def _input_contract(directory: str) -> InputContract:
    path = os.path.join(directory, PREPROCESSOR_FILE)
    recorded = _read_json(directory, PREPROCESSOR_FILE)
    config = recorded.get("config")
    if recorded.get("class_name") != "InputContract" or not isinstance(config, dict):
        raise ValueError(
            f"Corrupt {PREPROCESSOR_FILE}: expected a serialised InputContract. "
            f"Received: class_name={recorded.get('class_name')!r} in {path}"
        )
    try:
        return InputContract(**config)  # not from_config: it wraps the error in more lines
    except (TypeError, ValueError) as err:
        raise ValueError(f"Corrupt {PREPROCESSOR_FILE}: {err} (in {path})") from None


def _load_weights(model, path: str) -> None:
    try:
        model.load_weights(path)
    except OSError as err:  # h5py: truncated or not an HDF5 file
        reason = " ".join(str(err).split())
        raise ValueError(
            f"Corrupt or unreadable {WEIGHTS_FILE} ({reason}). Received: {path}"
        ) from None
    except ValueError as err:  # Keras: weights missing or of other shapes
        reason = str(err).strip().splitlines()[0]
        raise ValueError(
            f"{WEIGHTS_FILE} does not match the model config.json describes ({reason}). "
            f"Received: {path}"
        ) from None
