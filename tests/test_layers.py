"""The import contract of pyproject.toml ([tool.importlinter]): stages import downwards only, and no cycle
among the modules of a stage, imports inside functions included."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint(project: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    return subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                           "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=120)


def test_the_package_keeps_its_import_contract():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_upward_import_inside_a_function_breaks_it(tmp_path):
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    tasks_base = tmp_path / "src" / "langbert" / "tasks" / "base.py"
    tasks_base.write_text(tasks_base.read_text(encoding="utf-8") +
                          "\n\ndef _sneaky():\n    from ..inference import Predictor\n", encoding="utf-8")
    result = _lint(tmp_path)
    assert result.returncode != 0 and "langbert.tasks.base -> langbert.inference" in result.stdout
