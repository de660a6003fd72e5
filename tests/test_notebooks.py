"""The audit notebooks: jupytext sources in sync with the committed notebooks, and every notebook runs.

``notebooks/NN_name.py`` (jupytext percent format) is the source people edit and review;
``notebooks/NN_name.ipynb`` is its committed, output-free pair that JupyterLab and papermill
open. The sync test fails when one was edited without ``jupytext --sync`` on the other.
The execution test runs every notebook headlessly with papermill on a tiny real
transformers RM (BERT built from a config, real MiniLM tokenizer) and small parameters.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest

from workbench.reports.runner import NOTEBOOK_DIR, notebook_parameters

SOURCES = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def _cells(nb) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", ()))) for c in nb.cells]


def test_every_notebook_has_a_jupytext_source_and_back():
    assert len(NOTEBOOKS) == 7
    assert [p.stem for p in SOURCES] == [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_source_and_notebook_are_in_sync(source: Path):
    ipynb = source.with_suffix(".ipynb")
    from_source = jupytext.read(source)
    committed = nbformat.read(str(ipynb), as_version=4)
    assert _cells(from_source) == _cells(committed), (
        f"{ipynb.name} differs from {source.name}: run `jupytext --sync notebooks/{source.name}`"
    )
    assert committed.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent"


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_clean(ipynb: Path):
    nb = nbformat.read(str(ipynb), as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), f"{ipynb.name} has outputs"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", ())]
    assert len(tagged) == 1, f"{ipynb.name} needs exactly one cell tagged 'parameters'"
    assert not any(line.lstrip().startswith(("def ", "class ")) for c in code for line in c.source.splitlines()), (
        f"{ipynb.name} defines functions or classes in a cell: logic belongs in workbench/"
    )


# Small parameters per notebook; only names the notebook declares are passed.
SMALL = {
    "sample_size": 12,
    "n_boot": 50,
    "compare_smoothing": False,
    "perturb_sample": 10,
    "top_k_triggers": 5,
    "methods": "ig,occlusion",
    "n_steps": 4,
    "internal_batch_size": 4,
    "n_random": 2,
    "faithfulness_examples": 14,  # 03: two pairs beyond the 12 explained, by the first method only
    "trigger_pairs": 12,
    "golden": "",
    "bon": "",
    "min_samples": 5,
    "queue_size": 3,
    "bootstrap_k": 0,
}


@pytest.mark.slow
@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_a_tiny_model(ipynb: Path, tiny_models, tmp_path):
    model = str(tiny_models["bert"])
    declared = notebook_parameters(ipynb)
    params = {k: v for k, v in SMALL.items() if k in declared}
    params["model"] = model
    if "models" in declared:
        params["models"] = f"{model},{tiny_models['deberta']}"
    if "output_dir" in declared:
        params["output_dir"] = str(tmp_path / "queue")
    if ipynb.stem.startswith("04"):
        params["sample_size"] = 6
    if ipynb.stem.startswith("05"):
        params["sample_size"] = 8
    out = tmp_path / ipynb.name
    papermill.execute_notebook(
        str(ipynb),
        str(out),
        parameters=params,
        kernel_name="python3",
        cwd=str(NOTEBOOK_DIR),
        progress_bar=False,
        execution_timeout=600,
    )
    nb = nbformat.read(str(out), as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_reads_every_parameter(ipynb: Path, capsys):
    """papermill infers every parameter's type (a line it cannot parse is skipped, with a warning in `make demo`)."""
    nb = nbformat.read(str(ipynb), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", ()))
    names = {p.name for p in papermill.translators.PythonTranslator.inspect(cell)}
    assigned = {line.split("=", 1)[0].strip() for line in cell.source.splitlines() if " = " in line}
    assert names == assigned and "Unable to parse" not in capsys.readouterr().out, ipynb.name


def test_notebook_defaults_are_the_packages_graded_defaults():
    """The sample sizes the verdict margins were measured at are the notebooks' defaults too."""
    from workbench.audits.attribution import FAITHFULNESS_EXAMPLES
    from workbench.audits.features import PERTURB_SAMPLE

    probes = notebook_parameters(NOTEBOOK_DIR / "02_feature_probes.ipynb")
    attribution = notebook_parameters(NOTEBOOK_DIR / "03_attribution.ipynb")
    assert int(probes["perturb_sample"]["default"]) == PERTURB_SAMPLE == 400
    assert int(attribution["faithfulness_examples"]["default"]) == FAITHFULNESS_EXAMPLES == 40
