"""Task kinds. Each kind lives in one module: how it reads gold, its loss, how it decodes and
writes to the Doc, and its scores. The component only orchestrates them."""

from typing import Any, Dict, List, Optional, Type

from .base import Task
from .pair import EntailmentTask, RelatednessTask
from .parsing import ParsingTask
from .relation import RelationTask
from .spans import ChunkingTask, SpanTask
from .tagging import TaggingTask

KINDS: Dict[str, Type[Task]] = {
    cls.kind: cls
    for cls in (
        TaggingTask, SpanTask, ChunkingTask, ParsingTask, RelationTask, RelatednessTask,
        EntailmentTask,
    )
}  # fmt: skip


def build_tasks(
    cfg: Dict[str, Dict[str, Any]],
    labels: Optional[Dict[str, List[str]]] = None,
    states: Optional[Dict[str, Dict[str, Any]]] = None,
) -> List[Task]:
    """Create the tasks declared in the config, ordered by level (then config order, with
    relation and entailment tasks after the span or relatedness tasks of their level that
    they read), and link them.

    cfg (Dict[str, Dict[str, Any]]): Per task name, its settings ("kind" is required).
    labels (Optional[Dict[str, List[str]]]): Known labels per task.
    states (Optional[Dict[str, Dict[str, Any]]]): Known state per task (see `Task.state`).
    RETURNS (List[Task]): The tasks.
    """
    tasks = []
    for name, settings in cfg.items():
        kind = settings.get("kind")
        if kind not in KINDS:
            raise ValueError(
                f"Task '{name}' has unknown kind {kind!r}; known kinds: {sorted(KINDS)}"
            )
        task = KINDS[kind](name, dict(settings), (labels or {}).get(name))
        task.state.update((states or {}).get(name, {}))
        tasks.append(task)
    tasks.sort(key=lambda t: (t.level, isinstance(t, (RelationTask, EntailmentTask))))
    for t in tasks:
        if t.cfg.get("attr") == "SENT_START" and t.level != 0:
            raise ValueError(
                f"Task '{t.name}' predicts sentence starts, so it must sit at level 0: the "
                "sentences it finds bound every level above it"
            )
        t.link({task.name: task for task in tasks})
    # Doc attributes that only one task may write.
    single_owner = {
        "doc.ents (doc_ents = true)": lambda t: bool(t.cfg.get("doc_ents")),
        "doc._.relatedness (a relatedness task)": lambda t: isinstance(t, RelatednessTask),
        "doc.cats (an entailment task)": lambda t: isinstance(t, EntailmentTask),
    }
    for target, owns in single_owner.items():
        owners = [t.name for t in tasks if owns(t)]
        if len(owners) > 1:
            raise ValueError(f"Only one task may write {target}: {owners}")
    return tasks


__all__ = [
    "Task",
    "TaggingTask",
    "SpanTask",
    "ChunkingTask",
    "ParsingTask",
    "RelationTask",
    "RelatednessTask",
    "EntailmentTask",
    "KINDS",
    "build_tasks",
]
