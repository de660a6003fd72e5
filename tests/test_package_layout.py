"""The package's shape: one-way imports, no private names across modules, public surfaces that resolve.

Read from the source with :mod:`ast`, so the checks see imports inside functions too.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import workbench

ROOT = Path(workbench.__file__).resolve().parent
# Imports of these (heavy or optional) packages may stay inside functions.
LAZY_OK = {"torch", "transformers", "safetensors", "tqdm", "pyarrow", "datasets", "captum", "shap", "ipywidgets"}
LAZY_OK |= {"IPython", "vaderSentiment", "papermill", "nbformat", "nbconvert", "matplotlib", "peft", "importlib"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(path: Path):
    """(node, target module, imported names, at module level?) for every workbench import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = set(map(id, tree.body))
    guarded = {id(n) for stmt in tree.body if isinstance(stmt, ast.If) for n in ast.walk(stmt)}  # TYPE_CHECKING
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("workbench"):
            yield node, node.module, [a.name for a in node.names], id(node) in top or id(node) in guarded
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("workbench"):
                    yield node, alias.name, [], id(node) in top or id(node) in guarded


def _resolve(target: str, names: list[str]) -> list[str]:
    """The workbench modules an import loads: ``from pkg import mod`` counts as importing ``pkg.mod``."""
    out = []
    for name in names or [None]:
        sub = f"{target}.{name}" if name else None
        out.append(sub if sub in MODULES else target)
    return out


def test_no_private_names_imported_across_modules():
    offenders = [
        f"{_module_name(p)} imports {n} from {target}"
        for p in MODULES.values()
        for _, target, names, _ in _imports(p)
        for n in names
        if n.startswith("_") and not n.startswith("__")
    ]
    assert not offenders, offenders


def test_workbench_imports_are_at_module_level():
    """No import of workbench code hides inside a function (the lazy top-level facade excepted)."""
    offenders = [
        f"{_module_name(p)}:{node.lineno} imports {target}"
        for p in MODULES.values()
        if p != ROOT / "__init__.py"
        for node, target, _, top in _imports(p)
        if not top
    ]
    assert not offenders, offenders


def test_no_import_cycles():
    graph = {m: set() for m in MODULES}
    for m, p in MODULES.items():
        for _, target, names, _ in _imports(p):
            for dep in _resolve(target, names):
                if dep != m and dep in graph and not m.startswith(dep + "."):
                    graph[m].add(dep)
    # a package __init__ re-exporting its own submodules is not a cycle
    for m in graph:
        graph[m] = {d for d in graph[m] if not d.startswith(m + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str):
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(dep) :] + [dep]))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


PACKAGES = [m for m, p in MODULES.items() if p.name == "__init__.py" and not m.split(".")[-1].startswith("_")]


@pytest.mark.parametrize("package", PACKAGES)
def test_public_surface_resolves(package):
    mod = importlib.import_module(package)
    public = getattr(mod, "__all__", None)
    assert public, f"{package}/__init__.py lists no public names in __all__"
    missing = [name for name in public if not hasattr(mod, name)]
    assert not missing, f"{package}.__all__ names that do not resolve: {missing}"


def test_every_audit_result_follows_the_contract():
    from workbench.audits.attribution import AttributionAudit
    from workbench.audits.calibration import CalibrationAudit
    from workbench.audits.drift import DriftAudit
    from workbench.audits.ensemble import EnsembleResult
    from workbench.audits.features import FeatureAudit
    from workbench.audits.overview import OverviewResult
    from workbench.audits.result import AuditResult
    from workbench.audits.sycophancy import SycophancyResult

    for cls in (OverviewResult, CalibrationAudit, FeatureAudit, AttributionAudit, SycophancyResult, DriftAudit):
        assert issubclass(cls, AuditResult) and cls.section, cls
    assert issubclass(EnsembleResult, AuditResult) and EnsembleResult.section == "ensemble"
    assert not AuditResult.__abstractmethods__ - {"to_frame", "summary", "verdicts", "plot"}
