"""The TensorRT engine cache: never load an engine built for another model, TensorRT or GPU.

A TensorRT engine is only valid for the exact ONNX content, TensorRT version and GPU (compute
capability) it was built with, and for its precision and input shape. Each cached engine has a
JSON sidecar recording those fields; a lookup returns the engine only when every field matches
what is running now, and otherwise says which field differs so the caller rebuilds. Pure Python
(no TensorRT), so the rules are tested on any machine.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from depth_unet_ros.atomic_file import atomic_write
from depth_unet_ros.errors import ModelLoadError

log = logging.getLogger(__name__)

CACHE_ENV = "DEPTH_UNET_ENGINE_CACHE"
SIDECAR_FORMAT = 1
PRECISIONS = ("fp32", "fp16", "int8")
REBUILD_FIX = "rebuild with depth-unet build-engine model.onnx on this machine"


@dataclass(frozen=True)
class RuntimeFingerprint:
    """What an engine is tied to on the machine that runs it."""

    tensorrt_version: str  # exact, e.g. "10.3.0"; engines do not cross versions
    gpu_name: str  # e.g. "Orin (nvgpu)", "NVIDIA GeForce RTX 4090"
    compute_capability: str  # "major.minor", e.g. "8.7"


@dataclass(frozen=True)
class EngineKey:
    """Every field an engine depends on; its digest names the cached file."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str  # fp32, fp16, int8
    input_shape: tuple[int, ...]  # the largest (N, H, W, 3) the engine's profile accepts

    @classmethod
    def for_model(cls, onnx_sha256: str, runtime: RuntimeFingerprint, precision: str,
                  input_shape: tuple[int, ...]) -> "EngineKey":
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        return cls(onnx_sha256=onnx_sha256, precision=precision,
                   input_shape=tuple(int(v) for v in input_shape), **asdict(runtime))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["input_shape"] = list(self.input_shape)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "EngineKey":
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in values]
        if missing:
            raise KeyError(f"engine key lacks {', '.join(missing)}")
        kwargs = {n: values[n] for n in names}
        kwargs["input_shape"] = tuple(int(v) for v in values["input_shape"])
        return cls(**kwargs)

    def digest(self) -> str:
        """sha256 of the key fields in a canonical JSON form."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def differences(self, other: "EngineKey") -> list[str]:
        """``field: ours != theirs`` for every field that differs."""
        return [f"{f.name}: {getattr(self, f.name)!r} != {getattr(other, f.name)!r}"
                for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]


def file_sha256(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """sha256 of a file's content, read in chunks (ONNX files with weights can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """$DEPTH_UNET_ENGINE_CACHE, else ~/.cache/depth_unet_ros/engines."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "depth_unet_ros" / "engines"


def sidecar_path(engine_path: str | os.PathLike) -> Path:
    """``model.engine`` -> ``model.json``: the record of what the engine was built for."""
    return Path(engine_path).with_suffix(".json")


def write_engine(engine_path: str | os.PathLike, engine: bytes, key: EngineKey,
                 metadata_props: Mapping[str, str]) -> Path:
    """Write an engine and its sidecar (key, engine hash, the model's metadata) atomically.

    The sidecar goes last: an engine without one is never loaded, so a crash in between is safe.
    """
    engine_path = Path(engine_path)
    atomic_write(engine_path, engine)
    record = {
        "format": SIDECAR_FORMAT,
        "key": key.to_dict(),
        "engine_sha256": hashlib.sha256(engine).hexdigest(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metadata": dict(metadata_props),
    }
    atomic_write(sidecar_path(engine_path), (json.dumps(record, indent=2) + "\n").encode())
    return engine_path


def read_sidecar(engine_path: str | os.PathLike) -> dict[str, Any]:
    """The sidecar record of an engine file; ModelLoadError when absent or unreadable."""
    side = sidecar_path(engine_path)
    try:
        record = json.loads(side.read_text())
        record["key"] = EngineKey.from_dict(record["key"])
        record["metadata"] = dict(record.get("metadata") or {})
    except FileNotFoundError:
        raise ModelLoadError(f"engine {engine_path} has no sidecar {side.name}, so nothing says which "
                             f"model, TensorRT and GPU it was built for; {REBUILD_FIX}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"engine sidecar {side} is unreadable ({exc}); {REBUILD_FIX}") from None
    return record


def check_engine_file(engine_path: str | os.PathLike, runtime: RuntimeFingerprint) -> dict[str, Any]:
    """For an engine the user names directly: its sidecar, if it was built for this TensorRT and
    GPU; ModelLoadError with the differences and the fix otherwise."""
    engine_path = Path(engine_path)
    record = read_sidecar(engine_path)
    key: EngineKey = record["key"]
    wrong = [f"{name} {getattr(key, name)!r} (running: {getattr(runtime, name)!r})"
             for name in ("tensorrt_version", "gpu_name", "compute_capability")
             if getattr(key, name) != getattr(runtime, name)]
    if wrong:
        raise ModelLoadError(f"engine {engine_path} was built for another setup: {'; '.join(wrong)}; "
                             f"{REBUILD_FIX}")
    if record.get("engine_sha256") != file_sha256(engine_path):
        raise ModelLoadError(f"engine {engine_path} does not match the hash in its sidecar (changed "
                             f"or truncated); {REBUILD_FIX}")
    return record


class EngineCache:
    """A folder of ``<model stem>.<key digest>.engine`` files with ``.json`` sidecars."""

    def __init__(self, cache_dir: str | os.PathLike | None = None):
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()

    def engine_path(self, key: EngineKey, model_name: str = "model") -> Path:
        return self.cache_dir / f"{model_name}.{key.precision}.{key.digest()[:16]}.engine"

    def lookup(self, key: EngineKey, model_name: str = "model") -> Path | None:
        """The cached engine for exactly ``key``, else None (logging why) so the caller rebuilds."""
        path = self.engine_path(key, model_name)
        if not path.is_file():
            self._log_near_misses(key)
            return None
        try:
            record = read_sidecar(path)
        except ModelLoadError as exc:
            log.info("engine cache: %s", exc)
            return None
        diffs = key.differences(record["key"])
        if diffs:
            log.info("engine cache: %s is for another setup (%s); rebuilding", path.name, "; ".join(diffs))
            return None
        if record.get("engine_sha256") != file_sha256(path):
            log.warning("engine cache: %s does not match its sidecar hash; rebuilding", path.name)
            return None
        return path

    def store(self, key: EngineKey, engine: bytes, metadata_props: Mapping[str, str],
              model_name: str = "model") -> Path:
        """Write ``engine`` under its key; returns the engine path."""
        return write_engine(self.engine_path(key, model_name), engine, key, metadata_props)

    def get_or_build(self, key: EngineKey, build: Callable[[], bytes], metadata_props: Mapping[str, str],
                     model_name: str = "model", force: bool = False) -> tuple[Path, bool]:
        """(engine path, built now?): the cached engine for ``key``, else ``build()`` stored under it."""
        if not force:
            found = self.lookup(key, model_name)
            if found is not None:
                log.info("engine cache hit: %s", found)
                return found, False
        return self.store(key, build(), metadata_props, model_name), True

    def entries(self) -> list[tuple[Path, EngineKey]]:
        """Every readable (engine path, key) in the cache."""
        found = []
        for side in sorted(self.cache_dir.glob("*.json")):
            engine = side.with_suffix(".engine")
            try:
                found.append((engine, read_sidecar(engine)["key"]))
            except ModelLoadError:
                continue
        return found

    def _log_near_misses(self, key: EngineKey) -> None:
        """Say why an engine for the same model is not reused (e.g. TensorRT was upgraded)."""
        same_model = [(len(key.differences(other)), engine.name, other) for engine, other in self.entries()
                      if other.onnx_sha256 == key.onnx_sha256]
        if not same_model:
            log.info("engine cache: no engine for this model in %s", self.cache_dir)
            return
        _, name, closest = min(same_model, key=lambda item: item[:2])
        log.info("engine cache: %s not reused: %s", name, "; ".join(key.differences(closest)))
