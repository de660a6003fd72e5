"""Where caches go (issue 13, item 7), and the score cache where SQLite's WAL journal is unavailable.

The installed-package layout (package data, the user cache directory) is exercised for
real by tests/test_install.py, which installs a built wheel into a fresh environment.
"""

from __future__ import annotations

import html
import sqlite3
import warnings
from pathlib import Path

import pytest

from workbench.models.cache import ScoreCache, ScoreCacheWarning, score_key
from workbench.paths import (
    APP_NAME,
    REPO_DIR,
    cache_dir,
    data_dir,
    default_cache_root,
    in_source_checkout,
    model_dir,
    notebook_dir,
    resource_root,
    user_cache_dir,
)
from workbench.reports.runner import NOTEBOOK_DIR

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_overrides(monkeypatch):
    for name in ("WORKBENCH_CACHE_DIR", "WORKBENCH_MODEL_DIR", "WORKBENCH_DATA_DIR", "WORKBENCH_SQLITE_VFS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_source_checkout_uses_the_repository_folders(no_overrides):
    assert in_source_checkout() and REPO_DIR == ROOT and resource_root() == ROOT
    assert notebook_dir() == ROOT / "notebooks" == NOTEBOOK_DIR
    assert data_dir() == ROOT / "data" and (data_dir() / "golden" / "golden.jsonl").is_file()
    # make demo / make clean rely on the checkout's .cache/
    assert default_cache_root() == ROOT / ".cache"
    assert cache_dir() == ROOT / ".cache" and model_dir() == ROOT / ".cache"


def test_overrides_move_each_folder(no_overrides, tmp_path):
    no_overrides.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "c"))
    no_overrides.setenv("WORKBENCH_MODEL_DIR", str(tmp_path / "m"))
    no_overrides.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "d"))
    assert cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    assert model_dir() == tmp_path / "m" and (tmp_path / "m").is_dir()
    assert data_dir() == tmp_path / "d"


def test_user_cache_dir_follows_xdg(no_overrides, tmp_path):
    no_overrides.setenv("HOME", str(tmp_path / "home"))
    no_overrides.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / APP_NAME
    no_overrides.setenv("XDG_CACHE_HOME", "relative/cache")  # invalid per the XDG spec: ignored
    assert user_cache_dir() == tmp_path / "home" / ".cache" / APP_NAME
    no_overrides.delenv("XDG_CACHE_HOME")
    assert user_cache_dir() == tmp_path / "home" / ".cache" / APP_NAME


def test_an_unwritable_cache_folder_names_the_variable(no_overrides, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    no_overrides.setenv("WORKBENCH_CACHE_DIR", str(blocker / "sub"))
    with pytest.raises(OSError, match=r"WORKBENCH_CACHE_DIR.*point WORKBENCH_CACHE_DIR at a writable folder"):
        cache_dir()


def _file_journal_mode(path: Path) -> str:
    """The journal mode recorded in the database file, read by a separate plain connection."""
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        con.close()


def test_score_cache_uses_wal_by_default(no_overrides, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ScoreCacheWarning)
        cache = ScoreCache(tmp_path / "s.sqlite")
    assert cache.journal_mode == "wal"
    assert _file_journal_mode(cache.path) == "wal"


def test_score_cache_falls_back_where_sqlite_refuses_wal(no_overrides, tmp_path):
    # SQLite's lock-file VFS (for file systems without POSIX locks / shared memory) cannot run a
    # WAL journal: SQLite itself refuses the switch and keeps the rollback journal.
    no_overrides.setenv("WORKBENCH_SQLITE_VFS", "unix-dotfile")
    path = tmp_path / "s.sqlite"
    with pytest.warns(ScoreCacheWarning, match=r"s\.sqlite: the SQLite WAL journal is not available") as record:
        cache = ScoreCache(path)
    assert len(record) == 1 and "journal mode 'delete'" in str(record[0].message)
    assert "WORKBENCH_CACHE_DIR" in str(record[0].message)
    assert cache.journal_mode == "delete"
    assert _file_journal_mode(path) == "delete"  # the file really is in rollback-journal mode
    key = score_key("fp", 16, "some text")
    cache.put_many({key: 1.25})
    assert cache.get_many([key, "missing"]) == {key: 1.25}
    with warnings.catch_warnings():  # warned once per file: a second cache object on it is quiet
        warnings.simplefilter("error", ScoreCacheWarning)
        again = ScoreCache(path)
    assert again.get_many([key]) == {key: 1.25}


def test_an_unknown_sqlite_vfs_says_which_variable(no_overrides, tmp_path):
    no_overrides.setenv("WORKBENCH_SQLITE_VFS", "no-such-vfs")
    with pytest.raises(sqlite3.OperationalError, match=r"WORKBENCH_SQLITE_VFS='no-such-vfs'.*or unset it") as err:
        ScoreCache(tmp_path / "s.sqlite")
    assert "s.sqlite" in str(err.value)


# --------------------------------------------------------------------------- files a run writes

WRITER = """
import os, pathlib
from IPython.display import HTML, display
from workbench.reports.render import escape_text
with open(os.environ["WB_OUT_LOG"], "a") as fh:
    fh.write("ran\\n")
queue = pathlib.Path(output_dir) / "queue" / "relabel_queue.csv"
queue.parent.mkdir(parents=True, exist_ok=True)
queue.write_text("queue_id,human_label\\n1,\\n2,\\n")
display(HTML(f"<p>Wrote 2 items to <code>{escape_text(str(queue))}</code></p>"))
"""


def test_files_a_run_writes_land_in_its_out_folder_and_come_back_on_reuse(tmp_path, monkeypatch):
    """A notebook with an ``output_dir`` parameter writes into ``--out``; a reused run (execution
    cache hit) into another ``--out`` gets the files too, and its report names the new folder."""
    from notebook_helpers import make_notebook

    from workbench.reports import run_audit

    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "wb_out_rm.py").write_text("def score(prompts, responses):\n    return [len(r) for r in responses]\n")
    monkeypatch.syspath_prepend(str(mods))
    monkeypatch.setenv("PYTHONPATH", str(mods))
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    log = tmp_path / "ran.log"
    monkeypatch.setenv("WB_OUT_LOG", str(log))
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    make_notebook(nbdir / "10_w.ipynb", 'model = ""  # RM spec\noutput_dir = ""  # where files go', WRITER)

    first_out, second_out = tmp_path / "run 1 & <a>", tmp_path / "run 2 & <b>"
    first = run_audit("python:wb_out_rm:score", out=first_out, notebook_dir=nbdir)
    assert first.ok and log.read_text().split() == ["ran"]
    assert (first_out / "queue" / "relabel_queue.csv").is_file()
    assert not (nbdir / "queue").exists()  # nothing next to the notebook
    assert first.runs[0].parameters["output_dir"] == str(first_out.resolve())

    second = run_audit("python:wb_out_rm:score", out=second_out, notebook_dir=nbdir)
    assert second.ok and second.runs[0].reused and log.read_text().split() == ["ran"]  # no kernel started
    copied = second_out / "queue" / "relabel_queue.csv"
    assert copied.read_text() == "queue_id,human_label\n1,\n2,\n"
    page = (second_out / "10_w.html").read_text(encoding="utf-8")
    shown = html.escape(str(copied.resolve()), quote=True)
    assert shown in page and html.escape(str(first_out), quote=True) not in page
    nb_text = (second_out / "10_w.ipynb").read_text(encoding="utf-8")
    assert str(first_out) not in nb_text and html.escape(str(first_out), quote=True) not in nb_text
    # the first run's folder still has its own copy, untouched
    assert html.escape(str(first_out / "queue"), quote=True) in (first_out / "10_w.html").read_text(encoding="utf-8")
