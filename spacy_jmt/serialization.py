"""Saving and loading the `jmt` component: bytes, and directories written so that a save cut
off halfway never loads as if it were whole.

The weights are written first and the cfg last, each to a temporary file that replaces the
old one only when complete, and the cfg records the weights' checksum; loading refuses a
missing, truncated or mismatched file with a ValueError that names it.
"""

import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Union

import srsly
from spacy import util
from spacy.pipeline import TrainablePipe

MODEL_CHECKSUM = "model_sha256"  # cfg key: the checksum of the saved weights


def to_bytes(component: TrainablePipe, exclude: Iterable[str]) -> bytes:
    serialize = {
        "cfg": lambda: srsly.json_dumps(component.cfg),
        "vocab": lambda: component.vocab.to_bytes(exclude=exclude),
        "model": lambda: component.model.to_bytes(),
    }
    return util.to_bytes(serialize, exclude)


def from_bytes(
    component: TrainablePipe,
    data: bytes,
    exclude: Iterable[str],
    restore: Callable[[Dict[str, Any]], None],
) -> None:
    """Load bytes from `to_bytes`; `restore(cfg)` rebuilds the tasks and network from cfg."""
    try:
        msg = srsly.msgpack_loads(data)
    except ValueError as err:
        raise ValueError(f"[spacy-jmt] cannot load '{component.name}' from bytes: {err}") from err
    if "cfg" in msg and "cfg" not in exclude:
        restore(srsly.json_loads(msg["cfg"]))
    if "vocab" in msg and "vocab" not in exclude:
        component.vocab.from_bytes(msg["vocab"], exclude=exclude)
    if "model" in msg and "model" not in exclude:
        component.model.from_bytes(msg["model"])


def to_disk(component: TrainablePipe, path: Union[str, Path], exclude: Iterable[str]) -> None:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    digest = ""
    if "model" not in exclude:
        weights = component.model.to_bytes()
        digest = hashlib.sha256(weights).hexdigest()
        write_atomic(path / "model", weights)
    if "vocab" not in exclude:
        component.vocab.to_disk(path / "vocab", exclude=exclude)
    if "cfg" not in exclude:
        cfg = {**component.cfg, MODEL_CHECKSUM: digest}
        write_atomic(path / "cfg", srsly.json_dumps(cfg, indent=2).encode("utf8"))


def from_disk(
    component: TrainablePipe,
    path: Union[str, Path],
    exclude: Iterable[str],
    restore: Callable[[Dict[str, Any]], None],
) -> None:
    """Load a directory from `to_disk`; `restore(cfg)` rebuilds the tasks and network."""
    path = Path(path)
    expected = ""
    if "cfg" not in exclude:
        cfg = read_file(path / "cfg", lambda data: srsly.json_loads(data.decode("utf8")))
        expected = cfg.pop(MODEL_CHECKSUM, "")
        restore(cfg)
    if "vocab" not in exclude and (path / "vocab").exists():
        component.vocab.from_disk(path / "vocab", exclude=exclude)
    if "model" not in exclude:
        weights = read_file(path / "model", lambda data: data)
        if expected and hashlib.sha256(weights).hexdigest() != expected:
            raise ValueError(
                f"[spacy-jmt] {path / 'model'} does not match {path / 'cfg'} (checksum "
                "differs): the weights are damaged or from another save"
            )
        try:
            component.model.from_bytes(weights)
        except (ValueError, KeyError, TypeError, RuntimeError) as err:  # torch: Runtime
            raise ValueError(
                f"[spacy-jmt] cannot load the weights in {path / 'model'}: they do not "
                f"fit the network its cfg describes ({err})"
            ) from err


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file through a temporary file that replaces it only when complete."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as file_:
        file_.write(data)
        file_.flush()
        os.fsync(file_.fileno())
    os.replace(tmp, path)


def read_file(path: Path, parse: Callable[[bytes], Any]) -> Any:
    """Read and parse a saved file; a missing or unreadable one gets a ValueError naming it."""
    if not path.is_file():
        raise ValueError(
            f"[spacy-jmt] {path} is missing: the pipeline directory is incomplete (an "
            "interrupted save, or files removed)"
        )
    try:
        return parse(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"[spacy-jmt] {path} is damaged: {err}") from err
