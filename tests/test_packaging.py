"""The core installs and runs alone: the research harness and its heavy dependencies are extra."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest
from tests.conftest import PROJECT_ROOT

RESEARCH_ONLY = ("dask", "distributed", "xgboost")

# Makes the research extra's modules absent (None in sys.modules: `import` fails and
# `importlib.util.find_spec` answers None, as on an install without `[research]`), then uses the core.
_WITHOUT_RESEARCH = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None
import laat, laat.estimator, laat.trust, laat.serving, laat.priors, laat.elicit
from laat.pipeline_registry import register_pipelines
pipelines = register_pipelines()
assert "diabetes" in pipelines and "benchmark" not in pipelines, sorted(pipelines)
import laat_research
assert laat_research.missing_requirements() == ["distributed", "xgboost"]
loaded = sorted(m for m, mod in sys.modules.items() if m.split(".")[0] in {blocked!r} and mod is not None)
assert not loaded, loaded
print("core ok")
"""


def test_the_core_imports_and_registers_its_pipelines_without_the_research_extra():
    proc = subprocess.run(
        [sys.executable, "-c", _WITHOUT_RESEARCH.format(blocked=RESEARCH_ONLY)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("core ok")


def test_the_benchmark_pipeline_is_registered_with_the_research_extra():
    from laat.pipeline_registry import register_pipelines

    assert "benchmark" in register_pipelines()


@pytest.mark.slow
def test_the_wheel_ships_laat_and_laat_research_and_puts_the_heavy_dependencies_in_an_extra(tmp_path):
    # built from a copy: an in-tree build would leave build/ and src/laat.egg-info in the checkout
    source = tmp_path / "source"
    shutil.copytree(PROJECT_ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT_ROOT / name, source / name)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = tmp_path.glob("laat-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert {"laat/estimator.py", "laat/serving.py", "laat_research/sweep.py", "laat_research/pipeline/nodes.py"} <= set(
        names
    )
    assert not any(n.startswith(("laat/benchmark", "laat/pipelines/benchmark", "tests/")) for n in names)
    requires = [line.removeprefix("Requires-Dist: ") for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    for heavy in ("dask", "xgboost", "joblib"):
        (req,) = [r for r in requires if r.startswith(heavy)]
        assert 'extra == "research"' in req, req
