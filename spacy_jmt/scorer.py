"""The registered scorer of the `jmt` component: every task contributes its own scores."""

import warnings
from collections import Counter
from typing import Any, Callable, Dict, Iterable, List, Optional

from spacy.training import Example
from spacy.util import registry


def score_jmt(
    examples: Iterable[Example],
    *,
    tasks: Dict[str, Dict[str, Any]],
    labels: Optional[Dict[str, List[str]]] = None,
    **kwargs: Any,
) -> Dict[str, Any]:
    """Score the predictions of every task.

    Gold labels that a task does not know (it never saw them in training) count as errors;
    they are also counted under "unseen_labels" ({task: {label: occurrences}}, only if there
    are any) and reported with a UserWarning.

    examples (Iterable[Example]): The examples to score.
    tasks (Dict[str, Dict[str, Any]]): The component's task settings (its cfg["tasks"]).
    labels (Optional[Dict[str, List[str]]]): The labels of each task (the component's
        `labels`, which spaCy passes to its scorer); None: no check for unseen labels.
    RETURNS (Dict[str, Any]): All tasks' scores (tag_acc, pos_acc, sents_f, chunks_f,
        noun_chunks_f, dep_uas, dep_las, ... depending on the tasks).
    """
    from .tasks import build_tasks

    examples = list(examples)
    scores: Dict[str, Any] = {}
    built = [task for task in build_tasks(tasks, labels) if task.writes]
    # Each task is scored on the examples it learns from (its `corpora`).
    seen_by = {task.name: [eg for eg in examples if task.learns_from(eg)] for task in built}
    for task in built:
        scores.update(task.score(seen_by[task.name]))
    if labels:
        unseen = {}
        for task in built:
            known = set(task.labels)
            counts = Counter(
                label
                for eg in seen_by[task.name]
                for label in task.gold_labels(eg)
                if label not in known
            )
            if counts:
                unseen[task.name] = dict(counts.most_common())
        if unseen:
            scores["unseen_labels"] = unseen
            listed = "; ".join(
                f"{name}: " + _most_common(counts, SHOWN_UNSEEN) for name, counts in unseen.items()
            )
            warnings.warn(
                f"[spacy-jmt] the gold data has labels the model never saw in training; "
                f"they count as errors: {listed}",
                UserWarning,
                stacklevel=2,
            )
    return scores


# Unseen labels named per task in the warning (all of them are in scores["unseen_labels"]).
SHOWN_UNSEEN = 8


def _most_common(counts: Dict[str, int], n: int) -> str:
    """RETURNS (str): The n most frequent labels with their counts, and how many more."""
    shown = ", ".join(f"{label!r} ({count})" for label, count in list(counts.items())[:n])
    rest = list(counts.values())[n:]
    return shown + (f" and {len(rest)} more ({sum(rest)} occurrences)" if rest else "")


@registry.scorers("spacy-jmt.jmt_scorer.v1")
def make_jmt_scorer() -> Callable[..., Dict[str, Any]]:
    """RETURNS (Callable): The scorer of the `jmt` component."""
    return score_jmt
