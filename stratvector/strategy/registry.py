"""Find a strategy class by built-in name or ``path/to/file.py:ClassName``."""

from __future__ import annotations

import difflib
import importlib.util
import sys
from pathlib import Path

from stratvector.errors import StrategyError
from stratvector.strategy.base import Strategy


def builtin_strategies() -> dict[str, type[Strategy]]:
    """The built-in strategies by registered name."""
    from stratvector.strategy import builtins

    return {cls.name: cls for cls in builtins.BUILTINS}


def resolve_strategy(spec: str, base_dir: str | Path | None = None) -> type[Strategy]:
    """Return the strategy class named by ``spec``.

    ``spec`` is a built-in name (``momentum``) or ``path/to/file.py:ClassName``, the path
    relative to ``base_dir`` (the config file's folder) when not absolute.
    """
    if ":" in spec and spec.rsplit(":", 1)[0].endswith(".py"):
        return _load_from_file(spec, Path(base_dir) if base_dir else Path.cwd())
    if spec.endswith(".py"):
        raise StrategyError(f"strategy {spec!r}: name the class too, as {spec}:ClassName")
    known = builtin_strategies()
    if spec in known:
        return known[spec]
    close = difflib.get_close_matches(spec, list(known), n=1)
    hint = f" did you mean {close[0]!r}?" if close else ""
    raise StrategyError(
        f"unknown strategy {spec!r};{hint} built-ins: {', '.join(sorted(known))}; "
        "or name a class as path/to/file.py:ClassName"
    )


def _load_from_file(spec: str, base_dir: Path) -> type[Strategy]:
    file_part, cls_name = spec.rsplit(":", 1)
    path = Path(file_part)
    if not path.is_absolute():
        path = base_dir / path
    if not path.is_file():
        raise StrategyError(f"strategy file {path} not found (from {spec!r})")
    mod_name = f"stratvector_user_{path.stem}_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(mod_name, path)
    if module_spec is None or module_spec.loader is None:
        raise StrategyError(f"cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[mod_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(mod_name, None)
        raise StrategyError(f"{path}: error while importing: {type(exc).__name__}: {exc}") from exc
    cls = getattr(module, cls_name, None)
    if cls is None:
        found = [
            n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, Strategy)
        ]
        raise StrategyError(
            f"{path}: no class {cls_name!r}; strategies in the file: {', '.join(found) or 'none'}"
        )
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise StrategyError(f"{path}:{cls_name} is not a subclass of stratvector.strategy.Strategy")
    return cls
