"""What every task kind provides to the `jmt` component."""

from typing import Any, Dict, Iterable, List, Optional

from spacy.tokens import Doc
from spacy.training import Example

# Settings every task accepts in the config, with their defaults.
COMMON_SETTINGS: Dict[str, Any] = {"kind": None, "level": 1, "depth": 0, "weight": 1.0}


class Task:
    """A task kind: reads its gold, computes its loss, decodes and writes to the Doc, scores.

    Subclasses set `kind`, `settings` (their own config keys with defaults) and implement the
    methods below. `labels` is the sorted label set the network was sized with.

    name (str): The task's name in the config (also its key in losses and outputs).
    cfg (Dict[str, Any]): The task's settings from the config.
    labels (List[str]): The task's labels, if known.
    """

    kind = ""
    settings: Dict[str, Any] = {}
    # Level 0 reads the word representations of the whole doc; levels >= 1 run per sentence.
    min_level = 0

    def __init__(self, name: str, cfg: Dict[str, Any], labels: Optional[List[str]] = None):
        unknown = set(cfg) - set(COMMON_SETTINGS) - set(self.settings)
        if unknown:
            raise ValueError(
                f"Unknown setting(s) {sorted(unknown)} for task '{name}' of kind '{self.kind}'. "
                f"Known: {sorted(set(COMMON_SETTINGS) | set(self.settings))}"
            )
        self.name = name
        self.cfg = {**COMMON_SETTINGS, **self.settings, **cfg}
        if not isinstance(self.cfg["level"], int) or self.cfg["level"] < self.min_level:
            raise ValueError(f"Task '{name}': level must be an integer >= {self.min_level}")
        self.labels: List[str] = list(labels or [])
        # What the task learns from the data besides its labels (JSON-serializable; saved
        # with the component), e.g. the relation task's argument-type constraints.
        self.state: Dict[str, Any] = {}

    def link(self, tasks: Dict[str, "Task"]) -> None:
        """Resolve the other tasks this one reads (by name), once all tasks exist.

        tasks (Dict[str, Task]): Every task of the component, by name.
        """

    @property
    def level(self) -> int:
        return self.cfg["level"]

    @property
    def weight(self) -> float:
        return self.cfg["weight"]

    @property
    def n_outputs(self) -> int:
        """RETURNS (int): Width of the head's output layer."""
        return len(self.labels)

    def spec(self) -> Dict[str, Any]:
        """RETURNS (Dict[str, Any]): What the torch network needs to build this task's head."""
        return {
            "name": self.name,
            "kind": self.kind,
            "level": self.level,
            "depth": self.cfg["depth"],
            "n_labels": self.n_outputs,
        }

    def gold_labels(self, example: Example) -> Iterable[str]:
        """RETURNS (Iterable[str]): The labels this example's reference annotates."""
        raise NotImplementedError

    def observe(self, example: Example) -> None:
        """Learn `state` from one training example (called during `initialize`)."""

    def data_warning(self) -> Optional[str]:
        """RETURNS (Optional[str]): What the task found in the data it observed and cannot
        learn (the component warns with it after `initialize`), or None."""
        return None

    def loss(self, examples: List[Example], outputs: Dict[str, Dict[str, Any]]) -> Optional[Any]:
        """The task's mean loss over the annotated items of the batch, or None if the batch
        annotates nothing for this task (missing annotation gives no loss).

        examples (List[Example]): The batch.
        outputs (Dict[str, Dict[str, Any]]): Every head's outputs for the batch (torch
            tensors); this task's own are `outputs[self.name]`.
        RETURNS (Optional[torch.Tensor]): A scalar tensor.
        """
        raise NotImplementedError

    def set_annotations(
        self, docs: List[Doc], outputs: Dict[str, Dict[str, Any]], overwrite: bool
    ) -> None:
        """Decode the head's outputs (`outputs[self.name]`) and write them to the docs. Tasks
        run lowest level first, so a task may read what the tasks below it wrote."""
        raise NotImplementedError

    def score(self, examples: Iterable[Example]) -> Dict[str, Any]:
        """RETURNS (Dict[str, Any]): The task's scores, for `spacy train` and `spacy evaluate`."""
        raise NotImplementedError
