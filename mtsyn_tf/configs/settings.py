"""Every setting of a run, read from ``RunConfig`` / ``TrainerConfig``'s fields, and overrides.

A ``Setting`` is one settable leaf of a ``RunConfig``: a field (``batch_size``), a trainer
field (``trainer.da_tap``) or one key of a dict field set key by key
(``trainer.loss_weights.contour``). Its type, default, help and choices come from the
dataclass field (``mtsyn_tf.trainer.config.setting``); nothing here restates them. The
command-line flags (``mtsyn_tf.configs.flags``) and ``get_config(name, **overrides)`` both
go through ``apply_overrides``.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import json
import types
import typing

from mtsyn_tf.trainer.config import RunConfig, TrainerConfig, field_choices

_NESTED = {"trainer": TrainerConfig}
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One settable leaf of a ``RunConfig``."""

    path: str  # "batch_size", "trainer.da_tap", "trainer.loss_weights.contour"
    flag: str | None  # its command-line flag; None for a field that follows another
    type: object  # resolved annotation: bool, int, float, str, tuple[float, ...], X | None, dict
    default: object
    help: str
    choices: tuple | None = None
    follows: str | None = None  # dotted path this field copies unless set itself
    keys: tuple | None = None  # a dict field's allowed keys (each also a Setting of its own)

    @property
    def optional(self) -> bool:
        return _is_optional(self.type)

    @property
    def base_type(self):
        """The annotation without ``| None``."""
        if not self.optional:
            return self.type
        (inner,) = [arg for arg in typing.get_args(self.type) if arg is not type(None)]
        return inner

    def parse(self, text: str, source: str | None = None):
        """The typed value of ``text`` (a flag or ``--set`` value), checked."""
        source = source or self.path
        base = self.base_type
        if self.optional and text.strip().lower() in ("none", "null", ""):
            return None
        if base is dict:
            try:
                value = json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"{source} must be a JSON object. Received: {text!r} ({err})"
                ) from None
            return self.check(value, source)
        return self.check(text, source)

    def check(self, value, source: str | None = None):
        """``value`` converted to this setting's type (strings are parsed), or a ValueError."""
        source = source or self.path
        if value is None:
            if self.optional:
                return None
            raise ValueError(f"{source} cannot be None. Received: {self.path}=None")
        base = self.base_type
        if typing.get_origin(base) is tuple:
            if isinstance(value, str):
                value = [item.strip() for item in value.split(",") if item.strip()]
            if not isinstance(value, (list, tuple)):
                raise ValueError(
                    f"{source} must be a list of values. Received: {self.path}={value!r}"
                )
            (item_type, *_) = typing.get_args(base)
            value = tuple(_scalar(item, item_type, source, self.path) for item in value)
            if self.optional and not value:
                return None  # an empty list: the field's "off" (profile_steps)
            items = value
        elif base is dict:
            if not isinstance(value, dict):
                raise ValueError(f"{source} must be a JSON object. Received: {value!r}")
            if self.keys is None:
                return dict(value)
            unknown = sorted(set(value) - set(self.keys))
            if unknown:
                raise ValueError(
                    f"{source} takes the keys {self.keys}; unknown: {unknown}. "
                    f"Received: {self.path}={value!r}"
                )
            return {
                key: _scalar(item, float, source, f"{self.path}.{key}")
                for key, item in value.items()
            }
        else:
            value = _scalar(value, base, source, self.path)
            items = (value,)
        if self.choices is not None:
            bad = [item for item in items if item not in self.choices]
            if bad:
                raise ValueError(
                    f"{source} must be one of {tuple(self.choices)}. "
                    f"Received: {self.path}={value!r}"
                )
        return value


def _is_optional(annotation) -> bool:
    return isinstance(annotation, types.UnionType) and type(None) in typing.get_args(annotation)


def _scalar(value, kind, source: str, path: str):
    name = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[kind]
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif isinstance(value, str):
        return value
    raise ValueError(f"{source} must be {name}. Received: {path}={value!r}")


def _fields_of(cls, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        path = prefix + field.name
        if field.name in _NESTED:
            yield from _fields_of(_NESTED[field.name], path + ".")
            continue
        meta = field.metadata
        if "help" not in meta:
            raise TypeError(f"{cls.__name__}.{field.name} has no help text (use setting()).")
        default = _default_of(field)
        keys = meta.get("keys")
        if keys:
            for key in keys:
                yield Setting(
                    path=f"{path}.{key}",
                    flag=meta["flag"].format(key=key),
                    type=float,
                    default=default[key],
                    help=meta["key_help"][key],
                )
            # The whole dict is settable too (Python overrides), but has no flag of its own.
            yield Setting(
                path=path, flag=None, type=dict, default=default, help=meta["help"], keys=keys
            )
            continue
        yield Setting(
            path=path,
            flag=None if meta.get("follows") else (meta.get("flag") or field.name),
            type=hints[field.name],
            default=meta["cli_default"] if default is dataclasses.MISSING else default,
            help=meta["help"],
            choices=field_choices(field),
            follows=meta.get("follows"),
        )


def _default_of(field: dataclasses.Field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


@functools.cache
def settings() -> dict[str, Setting]:
    """Every settable leaf of ``RunConfig``, by dotted path, in field order."""
    table = {}
    flags_seen = {}
    for setting in _fields_of(RunConfig):
        if setting.flag is not None:
            if setting.flag in flags_seen:
                raise TypeError(
                    f"Flag --{setting.flag} would set both {flags_seen[setting.flag]} and "
                    f"{setting.path}; give one of them another flag name."
                )
            flags_seen[setting.flag] = setting.path
        table[setting.path] = setting
    return table


def resolve(key: str) -> Setting:
    """The setting named by a dotted path (``trainer.da_tap``) or a flag name (``da_tap``)."""
    table = settings()
    if key in table:
        return table[key]
    by_flag = {s.flag: s for s in table.values() if s.flag}
    if key in by_flag:
        return by_flag[key]
    names = list(dict.fromkeys([*table, *by_flag]))
    close = difflib.get_close_matches(key, names, n=4, cutoff=0.6)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    raise ValueError(
        f"Unknown config field {key!r}{hint}. Expected a dotted RunConfig field "
        f"(e.g. trainer.da_tap, batch_size) or its flag name (e.g. da_tap, w_depth). "
        f"Received: {key}"
    )


def get_value(config: RunConfig, path: str):
    value = config
    for part in path.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


def _set_value(config: RunConfig, path: str, value) -> None:
    *parents, last = path.split(".")
    owner = config
    for part in parents:
        owner = owner[part] if isinstance(owner, dict) else getattr(owner, part)
    if isinstance(owner, dict):
        owner[last] = value
    else:
        setattr(owner, last, value)


def apply_overrides(config: RunConfig, overrides: dict, *, parse_strings: bool = False):
    """A copy of ``config`` with ``overrides`` ({dotted path or flag name: value}) applied.

    Values are checked against the field's type and choices (strings are parsed; with
    ``parse_strings`` every value is a command-line string, ``"none"`` meaning None). A
    field that ``follows`` another (``trainer.seed`` follows ``seed``) takes its value
    unless it is overridden itself.
    """
    config = copy.deepcopy(config)
    done = {}
    for key, value in overrides.items():
        setting = resolve(key)
        if setting.path in done:
            raise ValueError(
                f"{setting.path} is set twice ({done[setting.path]} and {key}). "
                f"Received: {key}={value!r}"
            )
        done[setting.path] = key
        if parse_strings and isinstance(value, str):
            value = setting.parse(value, key)
        else:
            value = setting.check(value, key)
        _set_value(config, setting.path, value)
    for setting in settings().values():
        if setting.follows in done and setting.path not in done:
            _set_value(config, setting.path, get_value(config, setting.follows))
    return config


def parse_assignments(assignments) -> dict:
    """``["trainer.da_tap=conv4", "batch_size=8"]`` -> ``{"trainer.da_tap": "conv4", ...}``."""
    result = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(
                f"--set takes FIELD=VALUE (e.g. --set=trainer.da_tap=conv4). Received: {item!r}"
            )
        if key.strip() in result:
            raise ValueError(f"--set gives {key.strip()} twice. Received: {item!r}")
        result[key.strip()] = value
    return result
