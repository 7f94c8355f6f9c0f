"""Command-line flags generated from ``RunConfig``'s fields, and the config they describe.

``define_flags()`` defines one absl flag per setting (``mtsyn_tf.configs.settings``): the
field's name (``--batch_size``, ``--da_tap``), or the name its metadata gives
(``--w_depth`` for ``trainer.loss_weights.depth``), with the field's default, help and
choices; plus ``--config=NAME`` (a named experiment, ``mtsyn_tf.configs``) and repeatable
``--set=FIELD=VALUE`` overrides. ``config_from_flags()`` builds the ``RunConfig``:

- without ``--config``: every flag's value (its default unless given), as before;
- with ``--config``: the named experiment, then only the flags given on the command line;
- then the ``--set`` overrides (a field set both by its flag and ``--set`` is an error).
"""

from __future__ import annotations

import dataclasses
import json
import typing

from absl import flags

from mtsyn_tf.configs.settings import (
    Setting,
    apply_overrides,
    parse_assignments,
    resolve,
    settings,
)
from mtsyn_tf.trainer.config import RunConfig

# The flags defined here belong to the script that calls define_flags (its --help lists them).
flags.disclaim_key_flags()

CONFIG_FLAG = "config"
SET_FLAG = "set"


def _flag_default(setting: Setting, default):
    """``default`` as the flag's own default (lists as strings, dicts as JSON)."""
    if typing.get_origin(setting.base_type) is tuple:
        return [] if default is None else [str(item) for item in default]
    if setting.base_type is dict:
        return json.dumps(default)
    return default


def flag_settings(include=None, exclude=()) -> list[Setting]:
    """The settings that get a flag, optionally limited to dotted paths in ``include``."""
    chosen = [s for s in settings().values() if s.flag is not None]
    if include is not None:
        unknown = set(include) - {s.path for s in chosen}
        if unknown:
            raise ValueError(f"No flag for {sorted(unknown)}. Received: include={include}")
        chosen = [s for s in chosen if s.path in include]
    return [s for s in chosen if s.path not in exclude]


def define_flags(
    flag_values: flags.FlagValues = flags.FLAGS,
    *,
    include=None,
    exclude=(),
    defaults: dict | None = None,
    named_configs: bool = True,
) -> None:
    """Defines the run flags in ``flag_values``.

    Args:
        include: dotted paths of the settings to expose (default: all of them).
        exclude: dotted paths to leave out.
        defaults: {dotted path: default} for a script whose defaults differ from the
            field's (``scripts/diagnose.py`` measures batches of 8).
        named_configs: also define ``--config`` and ``--set``.
    """
    defaults = defaults or {}
    if named_configs:
        from mtsyn_tf.configs import config_names

        flags.DEFINE_enum(
            CONFIG_FLAG,
            None,
            config_names(),
            "A named experiment (mtsyn_tf/configs/): its settings, then the flags given on "
            "the command line, then --set. E.g. --config=demo/multitask_da_conv5.",
            flag_values=flag_values,
        )
        flags.DEFINE_multi_string(
            SET_FLAG,
            [],
            "FIELD=VALUE override of any RunConfig field by dotted name, repeatable: "
            "--set=trainer.da_tap=conv4 --set=trainer.loss_weights.depth=2.",
            flag_values=flag_values,
        )
    for setting in flag_settings(include, exclude):
        default = _flag_default(setting, defaults.get(setting.path, setting.default))
        help_text = f"{setting.help} [{setting.path}]"
        kwargs = {"flag_values": flag_values}
        base = setting.base_type
        if typing.get_origin(base) is tuple:
            flags.DEFINE_list(setting.flag, default, help_text, **kwargs)
        elif base is bool:
            flags.DEFINE_bool(setting.flag, default, help_text, **kwargs)
        elif setting.choices is not None:
            flags.DEFINE_enum(setting.flag, default, list(setting.choices), help_text, **kwargs)
        elif base is int:
            flags.DEFINE_integer(setting.flag, default, help_text, **kwargs)
        elif base is float:
            flags.DEFINE_float(setting.flag, default, help_text, **kwargs)
        elif base in (str, dict):
            flags.DEFINE_string(setting.flag, default, help_text, **kwargs)
        else:
            raise TypeError(f"No flag type for {setting.path}: {setting.type}")


def _from_flag(setting: Setting, value):
    """A parsed flag value as the setting's typed value (lists and JSON are parsed here)."""
    source = f"--{setting.flag}"
    if typing.get_origin(setting.base_type) is tuple:
        return setting.check(list(value or []), source)
    if setting.base_type is dict:
        return setting.parse(value, source)
    return setting.check(value, source)


def config_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> RunConfig:
    """The ``RunConfig`` the parsed flags describe (see the module docstring)."""
    defined = {name for name in flag_values}
    named = CONFIG_FLAG in defined and flag_values[CONFIG_FLAG].value
    if named:
        from mtsyn_tf.configs import get_config

        base = get_config(flag_values[CONFIG_FLAG].value)
    else:
        required = {
            f.name: f.metadata["cli_default"]
            for f in dataclasses.fields(RunConfig)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        base = RunConfig(**required)
    overrides = {}
    for setting in settings().values():
        if setting.flag is None or setting.flag not in defined:
            continue
        holder = flag_values[setting.flag]
        if named and not holder.present:
            continue
        overrides[setting.path] = _from_flag(setting, holder.value)
    config = apply_overrides(base, overrides)
    assignments = flag_values[SET_FLAG].value if SET_FLAG in defined else []
    sets = parse_assignments(assignments or [])
    for key in sets:
        setting = resolve(key)
        if setting.flag in defined and flag_values[setting.flag].present:
            raise ValueError(
                f"{setting.path} is given both as --{setting.flag} and --set={key}=...; "
                f"give it once. Received: --set={key}={sets[key]}"
            )
    return apply_overrides(config, sets, parse_strings=True)
