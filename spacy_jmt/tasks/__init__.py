"""Task kinds. Each kind lives in one module: how it reads gold, its loss, how it decodes and
writes to the Doc, and its scores. The component only orchestrates them."""

from typing import Any, Dict, List, Optional, Type

from .base import Task
from .chunking import ChunkingTask
from .parsing import ParsingTask
from .tagging import TaggingTask

KINDS: Dict[str, Type[Task]] = {cls.kind: cls for cls in (TaggingTask, ChunkingTask, ParsingTask)}


def build_tasks(
    cfg: Dict[str, Dict[str, Any]], labels: Optional[Dict[str, List[str]]] = None
) -> List[Task]:
    """Create the tasks declared in the config, ordered by level (then config order).

    cfg (Dict[str, Dict[str, Any]]): Per task name, its settings ("kind" is required).
    labels (Optional[Dict[str, List[str]]]): Known labels per task.
    RETURNS (List[Task]): The tasks.
    """
    tasks = []
    for name, settings in cfg.items():
        kind = settings.get("kind")
        if kind not in KINDS:
            raise ValueError(
                f"Task '{name}' has unknown kind {kind!r}; known kinds: {sorted(KINDS)}"
            )
        tasks.append(KINDS[kind](name, dict(settings), (labels or {}).get(name)))
    tasks.sort(key=lambda t: t.level)
    for t in tasks:
        if t.cfg.get("attr") == "SENT_START" and t.level != 0:
            raise ValueError(
                f"Task '{t.name}' predicts sentence starts, so it must sit at level 0: the "
                "sentences it finds bound every level above it"
            )
    return tasks


__all__ = ["Task", "TaggingTask", "ChunkingTask", "ParsingTask", "KINDS", "build_tasks"]
