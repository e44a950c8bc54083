"""Growing a trained pipeline: new tasks on top of a trained `jmt`, without losing the old ones.

JMT's title promise. A `jmt` component is initialized from a trained one (`grow_from` in
`[initialize.components.jmt]`): the tasks both share keep their labels and learned state, and
every weight they share (tok2vec, levels, heads) is copied; only what the new tasks add starts
fresh. During the new training phase the old knowledge is kept by one of:

- successive regularization (Hashimoto et al. 2017): the squared drift of the inherited
  parameters from their values at the start of the phase is added to the loss (`Anchor`);
- freezing: the lowest levels and the heads on them get no updates (`freeze_levels`);
- rehearsal: the old tasks' corpora stay in the training schedule (config only).
"""

from typing import Any, Dict, List, Optional, Set

from spacy.language import Language
from spacy.pipeline import TrainablePipe
from thinc.api import Model

from .model import get_torch_network


def load_source(source: str, name: str) -> TrainablePipe:
    """Load the trained `jmt` component to grow from.

    source (str): A pipeline directory or installed package (what `spacy.load` takes).
    name (str): The component's name in the new pipeline; the source's component of that
        name is used, else its only `jmt` component.
    RETURNS (TrainablePipe): The trained `jmt` component.
    """
    import spacy

    try:
        nlp: Language = spacy.load(source)
    except (OSError, ValueError) as err:
        raise ValueError(f"grow_from: cannot load the pipeline '{source}': {err}") from err
    jmts = {n: pipe for n, pipe in nlp.components if nlp.get_pipe_meta(n).factory == "jmt"}
    if name in jmts:
        return jmts[name]
    if len(jmts) == 1:
        return next(iter(jmts.values()))
    raise ValueError(
        f"grow_from: '{source}' has {len(jmts)} jmt components ({sorted(jmts)}), "
        f"none named '{name}'"
    )


# Task settings that only say how a task trains, which growing may change.
TRAINING_ONLY = ("weight", "corpora")


def check_tasks(old: Dict[str, Dict[str, Any]], new: Dict[str, Dict[str, Any]]) -> None:
    """Raise a ValueError unless every task of the trained component is in the new one with
    the same settings (the loss weight and the corpora it learns from may change): growing
    adds tasks, it does not move or drop them."""
    for name, settings in old.items():
        if name not in new:
            raise ValueError(
                f"grow_from: the trained pipeline's task '{name}' is missing from the new "
                f"config; keep every old task (its weight may be 0) and add the new ones"
            )
        a = {k: v for k, v in settings.items() if k not in TRAINING_ONLY}
        b = {k: v for k, v in new[name].items() if k not in TRAINING_ONLY}
        if a != b:
            raise ValueError(
                f"grow_from: task '{name}' differs from the trained pipeline's "
                f"(trained: {a}, now: {b}); only its weight and corpora may change"
            )


def copy_weights(source: TrainablePipe, target: TrainablePipe) -> Set[str]:
    """Copy the tok2vec and every torch parameter the two networks share into `target`.

    RETURNS (Set[str]): The names of the torch parameters copied (the inherited ones).
    """
    src_tok2vec, tok2vec = source.model.get_ref("tok2vec"), target.model.get_ref("tok2vec")
    try:
        tok2vec.from_bytes(src_tok2vec.to_bytes())
    except ValueError as err:
        raise ValueError(
            f"grow_from: the tok2vec of the new config does not match the trained one's "
            f"(keep [components.{target.name}.model.tok2vec] as it was): {err}"
        ) from err
    theirs = get_torch_network(source.model).state_dict()
    network = get_torch_network(target.model)
    own = network.state_dict()
    changed = sorted(n for n in theirs if n not in own or own[n].shape != theirs[n].shape)
    if changed:
        raise ValueError(
            f"grow_from: the new tasks change the shape of trained parameters {changed[:5]}; "
            "put new tasks at or above the highest level of the trained ones, and keep the "
            "model settings (widths) as they were"
        )
    network.load_state_dict(theirs, strict=False)  # the new tasks' parameters stay fresh
    return set(theirs)


def freeze_levels(model: Model, tasks: List[Dict[str, Any]], n_levels: int) -> None:
    """Stop updates to the lowest `n_levels` levels: level 0 is the tok2vec, level k >= 1 the
    k-th BiLSTM; the heads of the tasks on a frozen level are frozen with it.

    model (Model): The `jmt` model, with its network attached.
    tasks (List[Dict[str, Any]]): The task specs ("name", "level").
    n_levels (int): How many levels to freeze (0: none).
    """
    model.attrs["frozen_tok2vec"] = n_levels > 0
    network = get_torch_network(model)
    for k, level in enumerate(network.levels, start=1):
        level.requires_grad_(k >= n_levels)
    for task in tasks:
        network.heads[task["name"]].requires_grad_(task["level"] >= n_levels)


class Anchor:
    """A snapshot of parameters, and the pull back towards it (successive regularization).

    Covers torch parameters (chosen by name) and the thinc parameters of the tok2vec,
    including a transformer's torch weights inside its thinc shim.

    model (Model): The `jmt` model, with its network attached.
    names (Optional[Set[str]]): The network's parameters to anchor; None: the levels'.
    """

    def __init__(self, model: Model, names: Optional[Set[str]] = None):
        network = get_torch_network(model)
        self.torch_params = [
            p
            for n, p in network.named_parameters()
            if (n in names if names is not None else n.startswith("levels."))
        ]
        tok2vec = model.get_ref("tok2vec")
        self.thinc_params = [
            (node, name) for node in tok2vec.walk() for name in node.param_names
            if node.has_param(name)
        ]  # fmt: skip
        self.torch_params += [  # a transformer's weights, inside its thinc shim
            p for node in tok2vec.walk() for shim in node.shims if hasattr(shim, "_model")
            for p in shim._model.parameters()
        ]  # fmt: skip
        self.torch_values = [p.detach().clone() for p in self.torch_params]
        self.thinc_values = [node.get_param(name).copy() for node, name in self.thinc_params]

    def drift(self) -> float:
        """RETURNS (float): The squared L2 distance of all anchored parameters from the
        snapshot (0 right after it is taken)."""
        total = 0.0
        for p, a in zip(self.torch_params, self.torch_values):
            total += float(((p.detach() - a) ** 2).sum())
        for (node, name), value in zip(self.thinc_params, self.thinc_values):
            diff: Any = node.get_param(name) - value
            total += float((diff**2).sum())
        return total

    def add_gradient(self, strength: float) -> None:
        """Add the gradient of `strength * drift()` to the parameters' gradients (before the
        optimizer step)."""
        import torch

        with torch.no_grad():
            for p, a in zip(self.torch_params, self.torch_values):
                if p.requires_grad:
                    grad = 2 * strength * (p - a)
                    p.grad = grad if p.grad is None else p.grad.add_(grad)
        for (node, name), value in zip(self.thinc_params, self.thinc_values):
            if node.has_grad(name):
                node.inc_grad(name, 2 * strength * (node.get_param(name) - value))


class SuccessiveRegularization:
    """JMT's successive regularization during training: the component calls `step` after
    each backward pass, before the optimizer step.

    strength (float): λ: the gradient of λ times the squared drift from the anchor is added.
    interval (int): Re-anchor every this many updates (0: keep the first anchor).
    """

    def __init__(self, strength: float, interval: int):
        self.strength = strength
        self.interval = interval
        self.anchor: Optional[Anchor] = None
        self.n_updates = 0

    def set_anchor(self, model: Model, inherited: Optional[Set[str]]) -> None:
        """Take the current values of the anchored parameters as the anchor."""
        self.anchor = Anchor(model, inherited)

    def step(self, model: Model, inherited: Optional[Set[str]]) -> None:
        """Anchor at the first update (and every `interval`), else pull towards the anchor."""
        if self.strength > 0:
            if self.anchor is None or (self.interval and self.n_updates % self.interval == 0):
                self.set_anchor(model, inherited)
            else:
                self.anchor.add_gradient(self.strength)
        self.n_updates += 1

    def drift(self, model: Model, inherited: Optional[Set[str]]) -> float:
        """RETURNS (float): The squared drift from the anchor (taken now if there is none)."""
        if self.anchor is None:
            self.set_anchor(model, inherited)
        assert self.anchor is not None
        return self.anchor.drift()
