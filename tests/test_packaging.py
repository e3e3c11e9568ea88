"""The newcomer path and the project's own consistency: packaging, CI, lint, types."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_lists_the_same_packages_as_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]} | {_name(r) for r in project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)} - {"python", "pip"}
    assert conda == wanted


def test_environment_yml_pins_the_same_lower_bounds_as_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {_name(r): r.replace(" ", "") for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    for dep in (d for d in env["dependencies"] if isinstance(d, str) and _name(d) in pins):
        bound = re.sub(r"\[.*?\]", "", pins[_name(dep)])
        assert bound.lower() == dep.replace(" ", "").lower(), f"{dep} differs from pyproject's {pins[_name(dep)]}"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make lab" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_makefile_creates_the_virtualenv_and_installs_chromium() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "python3 -m venv" in makefile
    assert re.search(r"^test: .*browser", makefile, re.M)
    assert "apt-get install -y -qq chromium" in makefile


def test_the_console_script_is_installed() -> None:
    out = subprocess.run([Path(sys.executable).parent / "oms", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("oms ")


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True)


def test_the_code_is_lint_clean_and_formatted() -> None:
    lint = _run("ruff", "check", "oms", "tests", "benchmarks", "scripts", "conftest.py")
    assert lint.returncode == 0, lint.stdout
    fmt = _run("ruff", "format", "--check", "oms", "tests", "benchmarks", "scripts")
    assert fmt.returncode == 0, fmt.stdout


def test_the_package_type_checks_strictly() -> None:
    out = _run("mypy", "oms")
    assert out.returncode == 0, out.stdout


def test_the_readme_python_example_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```python\nimport oms\n\nwith oms.open")
    example = readme[start + len("```python\n") : readme.index("```", start + 10)]
    out = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "data" / "oms.duckdb").exists()
