"""Stable fingerprints of models and files, used as score-cache keys and in report metadata."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
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


def folder_fingerprint(folder: str | Path, extra: Iterable[str] = ()) -> str:
    """Fingerprint a saved model folder from its config, tokenizer and weight files."""
    folder = Path(folder)
    parts: list[str] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if path.name in METADATA_FILES or path.suffix in WEIGHT_SUFFIXES:
            parts.append(f"{rel}:{file_digest(path)}")
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
