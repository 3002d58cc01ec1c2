"""Experiment configs: ``get_config()`` files plus ``key=value`` overrides.

A config file (``configs/tiny_lm.py``) defines ``get_config(arg=None) -> ConfigDict``; ``arg`` is
``"quick"`` for the small CI-sized variant. Files in the repository's ``configs/`` are installed
as the package ``nips23jax.configs``, so they are found by name (``"tiny_lm"``) as well as by path.

Overrides are ``"train.lr=3e-4"``-style strings. Each key must already exist in the config, and
the value is parsed as a Python literal and checked against the existing value's type (list elements
against the default's element type), and a count or size (``*_steps``, ``num_*``, ``batch_size``, ...)
whose default is >= 1 must stay >= 1: an unknown key or a malformed value raises :class:`ConfigError`
with a one-line message.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import importlib
import importlib.util
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import ml_collections

__all__ = ["ConfigError", "apply_overrides", "check_counts", "config_fingerprint", "load_config"]


class ConfigError(ValueError):
    """A config file, key or value that cannot be used."""


def _load_module(name_or_path: str | os.PathLike):
    text = os.fspath(name_or_path)
    if text.endswith(".py") or os.sep in text:
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"config file {text!r} does not exist")
        spec = importlib.util.spec_from_file_location(f"_nips23jax_config_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as e:  # noqa: BLE001 - report any error in the user's file in one line
            raise ConfigError(f"config file {text!r} failed to load: {type(e).__name__}: {e}") from None
        return module
    try:
        return importlib.import_module(f"nips23jax.configs.{text}")
    except ModuleNotFoundError:
        raise ConfigError(f"no built-in config named {text!r}") from None


def load_config(
    name_or_path: str | os.PathLike, *, quick: bool = False, overrides: Iterable[str] = ()
) -> ml_collections.ConfigDict:
    """Loads ``get_config("quick" if quick else None)`` from a built-in name or a file path.

    Args:
      name_or_path: ``"tiny_lm"`` (module in ``nips23jax.configs``) or ``"path/to/file.py"``.
      quick: request the quick variant.
      overrides: ``"a.b=value"`` strings applied in order.

    Returns:
      A locked ``ConfigDict`` (new keys cannot be added by mistake).
    """
    module = _load_module(name_or_path)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"config {os.fspath(name_or_path)!r} defines no get_config()")
    config = module.get_config("quick" if quick else None)
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"get_config() in {os.fspath(name_or_path)!r} must return an ml_collections.ConfigDict")
    defaults = config
    config = apply_overrides(config, overrides)
    check_counts(config, defaults)
    config.lock()
    return config


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word is a string: --set model.norm=rms


def apply_overrides(config: ml_collections.ConfigDict, overrides: Iterable[str]) -> ml_collections.ConfigDict:
    """Returns a copy of ``config`` with ``"dotted.key=value"`` overrides applied.

    A key whose default is ``None`` takes any value, unless the config declares its type with
    ``ml_collections.config_dict.placeholder(int)`` (etc.): then it takes that type or ``None``.

    Raises:
      ConfigError: malformed override, unknown key (with the known keys at that level), or a
        value whose type does not match the current one (ints are accepted for floats).
    """
    base, config = config, copy.deepcopy(config)  # not ConfigDict(to_dict()): it drops placeholders' types
    for item in overrides:
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise ConfigError(f"malformed override {item!r}; expected key=value, e.g. train.num_steps=100")
        key, raw = (s.strip() for s in item.split("=", 1))
        parent = config
        parts = key.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(parent, ml_collections.ConfigDict) or part not in parent:
                where = ".".join(parts[:depth]) or "<top level>"
                known = sorted(parent.keys()) if isinstance(parent, ml_collections.ConfigDict) else []
                raise ConfigError(f"unknown config key {key!r} (no {part!r} under {where}; known: {', '.join(known)})")
            if depth < len(parts) - 1:
                parent = parent[part]
        value = _parse_value(raw)
        if _lookup(base, parts) is not None:
            value = _coerce(key, value, parent[parts[-1]], raw)
        elif value is not None:  # a None default takes anything, unless it is a typed placeholder
            declared = parent.get_type(parts[-1])
            if declared is not type(None):
                try:
                    value = _coerce(key, value, declared(), raw)
                except ConfigError:
                    raise ConfigError(
                        f"bad value {raw!r} for config key {key!r}: expected {declared.__name__} or None"
                    ) from None
        with parent.unlocked():
            parent[parts[-1]] = value
    return config


def _lookup(config: ml_collections.ConfigDict, parts: list[str]) -> Any:
    for part in parts:
        config = config[part]
    return config


def _coerce(key: str, value: Any, old: Any, raw: str) -> Any:
    if isinstance(old, ml_collections.ConfigDict):
        raise ConfigError(f"config key {key!r} is a group, not a value; set one of its fields instead")
    if isinstance(old, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif isinstance(old, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(old, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(old, str):
        if isinstance(value, str):
            return value
    elif isinstance(old, (tuple, list)):
        if isinstance(value, (tuple, list)):
            kinds = {type(x) for x in old}
            if len(kinds) == 1 and kinds <= {bool, int, float, str}:  # a homogeneous default: same element type
                value = [_coerce(f"{key}[{i}]", x, old[0], str(x)) for i, x in enumerate(value)]
            return type(old)(value)
    else:
        return value
    raise ConfigError(f"bad value {raw!r} for config key {key!r}: expected {type(old).__name__} like {old!r}")


# Keys holding a count or size (a trailing path component matched below): an int default >= 1 means the
# key must stay >= 1 (0 steps, chains or rows would make a run measure nothing or divide by zero).
_COUNT_NAMES = ("num_", "steps", "batch_size", "chains", "rounds", "size", "side", "sides", "samples", "iters",
                "epochs", "stages", "width", "depth", "layers", "heads", "d_model")


def _is_count_key(name: str) -> bool:
    if "warmup" in name:  # 0 warmup steps is a valid choice
        return False
    return name.startswith("num_") or any(name == n or name.endswith("_" + n) for n in _COUNT_NAMES)


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 1


def _is_count_list(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and bool(x) and all(_is_count(v) for v in x)


def check_counts(config: ml_collections.ConfigDict, defaults: ml_collections.ConfigDict, prefix: str = "") -> None:
    """Raises :class:`ConfigError` for a count-like key (``*_steps``, ``num_*``, ``batch_size``, ...) whose
    default is an int >= 1 (or a list of them) and whose value is not; one declared
    ``placeholder(int)`` (default None) must stay None or an int >= 1."""
    for name, default in defaults.items():
        key = f"{prefix}{name}"
        value = config.get(name)
        if isinstance(default, ml_collections.ConfigDict):
            if isinstance(value, ml_collections.ConfigDict):
                check_counts(value, default, key + ".")
            continue
        if not _is_count_key(name):
            continue
        if _is_count(default) and not _is_count(value):
            raise ConfigError(f"config key {key!r} must be an int >= 1, got {value!r}")
        if _is_count_list(default) and not _is_count_list(value):
            raise ConfigError(f"config key {key!r} must be a non-empty list of ints >= 1, got {value!r}")
        if default is None and defaults.get_type(name) is int and value is not None and not _is_count(value):
            raise ConfigError(f"config key {key!r} must be None or an int >= 1, got {value!r}")


def config_fingerprint(config: ml_collections.ConfigDict, *, exclude: Iterable[str] = ()) -> str:
    """A stable hash of the config's contents (top-level keys in ``exclude`` ignored)."""
    d = config.to_dict()
    for k in exclude:
        d.pop(k, None)
    blob = json.dumps(d, sort_keys=True, default=repr)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
