"""Task kinds: the registry. Each kind lives in one module of this package (its settings, how
it reads gold, its head, its loss, how it decodes and writes to the Doc, its scores); `KINDS`
maps the `kind` of a config to its class. The component and the network only orchestrate
them. To add a kind, write its module and add its class here (or, from outside this
package, call `register_kind`)."""

from typing import Any, Dict, List, Optional, Type

from .base import Task
from .coreference import CoreferenceTask
from .lemma import LemmaTask
from .mentions import MentionTask
from .pair import EntailmentTask, RelatednessTask
from .parsing import ParsingTask
from .relation import RelationTask
from .spans import ChunkingTask, SpanTask
from .tagging import TaggingTask

KINDS: Dict[str, Type[Task]] = {
    cls.kind: cls
    for cls in (
        TaggingTask, SpanTask, ChunkingTask, ParsingTask, RelationTask, RelatednessTask,
        EntailmentTask, LemmaTask, MentionTask, CoreferenceTask,
    )
}  # fmt: skip


def register_kind(cls: Type[Task]) -> Type[Task]:
    """Register a task kind (usable as a class decorator), so that configs can name it.

    cls (Type[Task]): The kind's class; its `kind` must be new.
    RETURNS (Type[Task]): The class.
    """
    if KINDS.get(cls.kind, cls) is not cls:
        raise ValueError(f"Task kind {cls.kind!r} is registered already: {KINDS[cls.kind]}")
    KINDS[cls.kind] = cls
    return cls


def build_tasks(
    cfg: Dict[str, Dict[str, Any]],
    labels: Optional[Dict[str, List[str]]] = None,
    states: Optional[Dict[str, Dict[str, Any]]] = None,
) -> List[Task]:
    """Create the tasks declared in the config, ordered by level (then config order, with a
    task after the tasks of its level that it reads), and link them.

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
    tasks.sort(key=lambda t: (t.level, bool(t.reads)))
    by_name = {task.name: task for task in tasks}
    for t in tasks:
        t.link(by_name)
    owners: Dict[str, List[str]] = {}
    for t in tasks:
        for target in t.owns() if t.writes else ():
            owners.setdefault(target, []).append(t.name)
    for target, names in owners.items():
        if len(names) > 1:
            raise ValueError(f"Only one task may write {target}: {names}")
    return tasks


__all__ = [
    "Task",
    "LemmaTask",
    "TaggingTask",
    "SpanTask",
    "ChunkingTask",
    "ParsingTask",
    "RelationTask",
    "RelatednessTask",
    "EntailmentTask",
    "KINDS",
    "build_tasks",
    "register_kind",
]
