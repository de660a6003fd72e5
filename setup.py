"""Build step that ships the notebooks and data as package data (configuration is in pyproject.toml).

The repository keeps ``notebooks/`` and ``data/`` at its top level. A wheel (``pip install .``)
carries copies of them under ``workbench/_bundled/``, where :mod:`workbench.paths` finds them
when the package does not run from a source checkout. An editable install
(``pip install -e .``) copies nothing: it reads the repository's folders directly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = "_bundled"  # workbench.paths.BUNDLED_FOLDER
#: repository folder -> the files of it that become package data (relative glob patterns)
SHIPPED = {
    "notebooks": ["*.ipynb", "*.py"],
    "data/golden": ["*"],
    "data/sycophancy": ["*"],
    "data/demo": ["*"],
}


def shipped_files() -> list[Path]:
    """The repository files (relative to its root) that a wheel carries under ``workbench/_bundled/``."""
    out = []
    for folder, patterns in SHIPPED.items():
        for pattern in patterns:
            for path in sorted((ROOT / folder).glob(pattern)):
                if path.is_file() and not path.name.startswith("."):
                    out.append(path.relative_to(ROOT))
    return out


class build_py_with_bundle(build_py):
    """``build_py`` that also copies the notebooks and shipped data into ``workbench/_bundled/``."""

    def bundle_targets(self) -> dict[Path, Path]:
        target = Path(self.build_lib) / "workbench" / BUNDLED
        return {ROOT / rel: target / rel for rel in shipped_files()}

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the repository's own folders
            return
        targets = self.bundle_targets()
        if not targets:
            raise FileNotFoundError(f"no notebooks or data found under {ROOT}: build from the repository root")
        for source, dest in targets.items():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:
            return outputs
        return [*outputs, *(str(dest) for dest in self.bundle_targets().values())]


setup(cmdclass={"build_py": build_py_with_bundle})
