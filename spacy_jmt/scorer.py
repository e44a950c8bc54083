"""The registered scorer of the `jmt` component: every task contributes its own scores."""

from typing import Any, Callable, Dict, Iterable

from spacy.training import Example
from spacy.util import registry


def score_jmt(
    examples: Iterable[Example], *, tasks: Dict[str, Dict[str, Any]], **kwargs: Any
) -> Dict[str, Any]:
    """Score the predictions of every task.

    examples (Iterable[Example]): The examples to score.
    tasks (Dict[str, Dict[str, Any]]): The component's task settings (its cfg["tasks"]).
    RETURNS (Dict[str, Any]): All tasks' scores (tag_acc, pos_acc, sents_f, chunks_f,
        noun_chunks_f, dep_uas, dep_las, ... depending on the tasks).
    """
    from .tasks import build_tasks

    examples = list(examples)
    scores: Dict[str, Any] = {}
    for task in build_tasks(tasks):
        scores.update(task.score(examples))
    return scores


@registry.scorers("spacy-jmt.jmt_scorer.v1")
def make_jmt_scorer() -> Callable[..., Dict[str, Any]]:
    """RETURNS (Callable): The scorer of the `jmt` component."""
    return score_jmt
