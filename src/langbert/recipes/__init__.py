"""Recipes shipped with the package; ``langbert train NAME`` finds them by name."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError

HERE = Path(__file__).parent


def recipe_names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.yaml"))


def recipe_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.is_file():
        return path
    packaged = HERE / f"{name_or_path}.yaml"
    if packaged.is_file():
        return packaged
    raise ConfigError(f"recipe '{name_or_path}' is neither a file nor a packaged recipe ({recipe_names()})")
