"""Stable fingerprints of models and files, used as score-cache keys and in report metadata."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = [
    "FULL_HASH_LIMIT",
    "WEIGHT_SUFFIXES",
    "METADATA_FILES",
    "sha256_bytes",
    "file_digest",
    "folder_fingerprint",
    "state_dict_fingerprint",
    "json_fingerprint",
    "MODULE_FILE_LIMIT",
    "module_files",
    "module_fingerprint",
]

# Files up to this size are hashed in full; larger weight files are identified by
# their size, their safetensors header and their first and last chunks.
FULL_HASH_LIMIT = 1 << 30
_CHUNK = 16 << 20

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
METADATA_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spm.model",
    "tokenizer.model",
    "chat_template.jinja",
    "value_head.json",
    "adapter_config.json",
)


def sha256_bytes(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, str):
            part = part.encode("utf-8")
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


def file_digest(path: str | Path) -> str:
    """sha256 of a file; for files over 1 GiB a digest of size, header and edge chunks."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256()
    with path.open("rb") as fh:
        if size <= FULL_HASH_LIMIT:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        else:
            h.update(f"size={size}".encode())
            h.update(fh.read(_CHUNK))
            fh.seek(size - _CHUNK)
            h.update(fh.read(_CHUNK))
    return h.hexdigest()


def model_file(path: Path) -> bool:
    """A file that :func:`folder_fingerprint` reads by default: config, tokenizer or weights."""
    return path.name in METADATA_FILES or path.suffix in WEIGHT_SUFFIXES


def folder_fingerprint(
    folder: str | Path, extra: Iterable[str] = (), select: Callable[[Path], bool] = model_file
) -> str:
    """Fingerprint a saved model folder from the files ``select`` keeps (default: config, tokenizer and weights)."""
    folder = Path(folder)
    parts: list[str] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if select(path):
            parts.append(f"{path.relative_to(folder).as_posix()}:{file_digest(path)}")
    if not parts:
        raise FileNotFoundError(f"{folder}: no model files (config.json, *.safetensors, ...) to fingerprint")
    return sha256_bytes(*parts, *extra)


def state_dict_fingerprint(module, extra: Iterable[str] = ()) -> str:
    """Fingerprint an in-memory torch module by hashing its parameters and buffers."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        t = tensor.detach().to("cpu").contiguous().reshape(-1)
        h.update(f"{t.dtype}{tuple(tensor.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    for item in extra:
        h.update(item.encode())
    return h.hexdigest()


def json_fingerprint(obj) -> str:
    return sha256_bytes(json.dumps(obj, sort_keys=True, default=str))


#: A package with more files than this is fingerprinted by its ``.py`` files only.
MODULE_FILE_LIMIT = 2000


def _package_root(module) -> Path | None:
    """The folder of the top-level package ``module`` belongs to (``None`` for a top-level module)."""
    top = module.__name__.split(".", 1)[0]
    top_module = sys.modules.get(top)
    locations = list(getattr(top_module, "__path__", []) or []) if top_module is not None else []
    return Path(locations[0]) if locations else None


def module_files(module) -> list[Path]:
    """The files a ``python:`` RM's fingerprint hashes: the module's file and its package's files.

    For a module inside a package, every file of the top-level package (its helpers,
    constants and data files such as weights next to the code; ``__pycache__`` and
    hidden entries excluded); a package with more than :data:`MODULE_FILE_LIMIT` files
    contributes its ``.py`` files only. For a top-level module, its own file. Files the
    code reads from elsewhere are not covered: give such a model an explicit version.
    """
    own = getattr(module, "__file__", None)
    files: set[Path] = {Path(own).resolve()} if own else set()
    root = _package_root(module)
    if root is not None and root.is_dir():
        found = [
            path
            for path in root.rglob("*")
            if path.is_file()
            and "__pycache__" not in path.parts
            and not any(part.startswith(".") for part in path.relative_to(root).parts)
        ]
        if len(found) > MODULE_FILE_LIMIT:
            found = [path for path in found if path.suffix == ".py"]
        files.update(path.resolve() for path in found)
    return sorted(files)


def module_fingerprint(module, extra: Iterable[str] = ()) -> str:
    """sha256 over the contents of :func:`module_files` (with their paths relative to the package)."""
    files = module_files(module)
    if not files:
        raise ValueError(f"module {module.__name__!r} has no source file to fingerprint; pass a version")
    root = _package_root(module)
    parts = []
    for path in files:
        try:
            rel = path.relative_to(root.resolve()).as_posix() if root is not None else path.name
        except ValueError:
            rel = path.name
        parts.append(f"{rel}:{file_digest(path)}")
    return sha256_bytes(f"module:{module.__name__}", *parts, *extra)
