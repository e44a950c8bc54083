"""The Thinc model of the `jmt` component: a tok2vec layer feeding the torch network.

The torch network's shape depends on the tasks and their label counts, which are only known
after `initialize` (or from the saved cfg), so the builder returns a model without it and
`attach_network` adds it later. This module imports torch only inside `attach_network`.
"""

import contextlib
from typing import Any, Callable, Dict, List, Optional, Tuple, cast

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, PyTorchShim, torch2xp, xp2torch
from thinc.types import Floats2d

from .layers import LOSS_WEIGHTS, STRUCTURES
from .quantize import quantize_network, quantized_engine, weights_key

# Per task name, the head's outputs (torch tensors and the parser's segments).
JMTOutput = Dict[str, Dict[str, Any]]
# At inference, long input runs in parts, so that memory beyond the doc's outputs stays bounded:
# the tok2vec over a doc longer than TOK2VEC_PIECE tokens piece by piece, each piece with
# PIECE_CONTEXT tokens of context on either side whose outputs are dropped (a CNN tok2vec,
# whose receptive field is smaller, gives the same vectors as over the whole doc; a
# transformer's memory grows with the piece); the levels above 0 over groups of whole
# sentences of about SENTENCE_GROUP tokens (the same outputs; a batch of nlp.pipe is one).
TOK2VEC_PIECE = 2048
PIECE_CONTEXT = 32
SENTENCE_GROUP = 16384


@registry.architectures("spacy-jmt.JMTModel.v1")
def build_jmt_model(
    tok2vec: Model[List[Doc], List[Floats2d]],
    hidden_width: int = 256,
    label_embedding_width: int = 32,
    shortcut_connections: bool = True,
    dropout: float = 0.2,
    arc_width: int = 256,
    label_width: int = 64,
    communication: str = "none",
) -> Model[List[Doc], JMTOutput]:
    """Build the hierarchical multi-task model (`spacy-jmt.JMTModel.v2` without word
    dropout); see `build_jmt_model_v2`."""
    return build_jmt_model_v2(
        tok2vec, hidden_width, label_embedding_width, shortcut_connections, dropout,
        arc_width, label_width, communication, word_dropout=0.0,
    )  # fmt: skip


@registry.architectures("spacy-jmt.JMTModel.v2")
def build_jmt_model_v2(
    tok2vec: Model[List[Doc], List[Floats2d]],
    hidden_width: int = 256,
    label_embedding_width: int = 32,
    shortcut_connections: bool = True,
    dropout: float = 0.2,
    arc_width: int = 256,
    label_width: int = 64,
    communication: str = "none",
    word_dropout: float = 0.0,
    loss_weights: str = "fixed",
) -> Model[List[Doc], JMTOutput]:
    """Build the hierarchical multi-task model.

    tok2vec (Model[List[Doc], List[Floats2d]]): The shared word representations.
    hidden_width (int): Width of every level and task-specific BiLSTM (both directions).
    label_embedding_width (int): Width of the label embeddings that the tasks below feed
        to the levels above; 0 switches label embeddings off.
    shortcut_connections (bool): Whether every level reads the word representations.
    dropout (float): Dropout rate inside the network.
    arc_width (int): Width of the parser's arc MLPs.
    label_width (int): Width of the parser's label MLPs.
    communication (str): Messages between the task layers: "none" (the plain hierarchy),
        "complete" (every task hears every task it may read) or "star" (through a shared
        hub); see spacy_jmt.layers.communication.
    word_dropout (float): In training, the share of tokens whose whole word representation
        (the tok2vec output) is zeroed, the others scaled up to keep the expected value:
        the network learns not to lean on any one word (e.g. a memorized entity name).
    loss_weights (str): How the tasks' losses are summed: "fixed" (each by its task's
        "weight") or "uncertainty" (Kendall et al. 2018: each task also learns a log
        variance s and adds weight * (exp(-s) * loss + s / 2), so that a task's weight
        follows the scale of its loss; the learned exp(-s) are `JMT.loss_weights()`).
    RETURNS (Model[List[Doc], JMTOutput]): The model; call `attach_network` before use.
    """
    if not 0.0 <= word_dropout < 1.0:
        raise ValueError(f"word_dropout must be in [0, 1), got {word_dropout}")
    if communication not in STRUCTURES:
        raise ValueError(f"communication must be one of {STRUCTURES}, got {communication!r}")
    if loss_weights not in LOSS_WEIGHTS:
        raise ValueError(f"loss_weights must be one of {LOSS_WEIGHTS}, got {loss_weights!r}")
    return Model(
        "jmt",
        forward,
        layers=[tok2vec],
        refs={"tok2vec": tok2vec},
        attrs={
            "hidden_width": hidden_width,
            "label_embedding_width": label_embedding_width,
            "shortcut_connections": shortcut_connections,
            "dropout": dropout,
            "arc_width": arc_width,
            "label_width": label_width,
            "communication": communication,
            "word_dropout": word_dropout,
            "loss_weights": loss_weights,
            "frozen_tok2vec": False,  # set by spacy_jmt.growth.freeze_levels
            "tok2vec_piece": TOK2VEC_PIECE,
            "sentence_group": SENTENCE_GROUP,
            "get_segments": None,
        },
    )


def attach_network(model: Model, width_in: int, tasks: List[Dict[str, Any]]) -> None:
    """Create the torch network for these tasks and add it to the model.

    model (Model): A model from `build_jmt_model`.
    width_in (int): Width of the tok2vec output.
    tasks (List[Dict[str, Any]]): The task specs (`Task.spec`).
    """
    from thinc.api import PyTorchWrapper_v2

    from .layers.network import JMTNetwork

    a = model.attrs
    network = JMTNetwork(
        width_in,
        a["hidden_width"],
        tasks,
        a["label_embedding_width"],
        a["shortcut_connections"],
        a["dropout"],
        a["communication"],
        head_sizes={"arc_width": a["arc_width"], "label_width": a["label_width"]},
        loss_weights=a.get("loss_weights", "fixed"),
    )
    wrapper = PyTorchWrapper_v2(
        network, convert_inputs=_convert_inputs, convert_outputs=_convert_outputs
    )
    wrapper.shims[0] = JMTShim(network)
    if model.has_ref("network"):
        model.layers[model.layers.index(model.get_ref("network"))] = wrapper
    else:
        model.layers.append(wrapper)
    model.set_ref("network", wrapper)


class JMTShim(PyTorchShim):
    """Thinc's PyTorch shim, with the parameter averages found and an int8 copy for inference.

    Averages: with `use_averages = true`, Thinc's optimizer keeps a moving average of every
    parameter, keyed `(shim.id, name)` for a torch module, and spaCy evaluates and saves the
    pipeline inside `nlp.use_params(optimizer.averages)`. Thinc's own shim looks the averages
    up under other keys ("pytorch_<id>_<name>"), so the torch network would always run with
    its raw weights; this one finds them.

    Quantization: with `quantize` set (the component's `quantize` setting), `predict` runs an
    int8 copy of the network (spacy_jmt.quantize), made again after every training step and
    whenever a parameter changed (loading, averages); training runs in float32.
    """

    quantize = False

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        self._quantized: Optional[Tuple[Tuple[Tuple[int, int], ...], Any]] = None

    def predict(self, inputs: ArgsKwargs) -> Any:
        network = self.inference_network()
        if network is self._model:
            return super().predict(inputs)
        import torch

        with torch.no_grad():
            return network(*inputs.args, **inputs.kwargs)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_quantized": None}  # pickles (n_process) remake their copy

    def begin_update(self, inputs: ArgsKwargs):
        self._quantized = None  # the optimizer may update the weights in place
        return super().begin_update(inputs)

    def inference_network(self) -> Any:
        """RETURNS (Module): The network that predicts: the int8 copy where quantized."""
        quantized = self._quantized_network() if self.quantize else None
        return self._model if quantized is None else quantized

    def _quantized_network(self) -> Any:
        """RETURNS (Optional[Module]): The int8 copy of the current weights; None where torch
        has no quantized engine for this machine, or the network is not on the CPU."""
        if self.device.type != "cpu" or quantized_engine() is None:
            return None
        weights = weights_key(self._model.parameters())
        if self._quantized is None or self._quantized[0] != weights:
            self._quantized = (weights, quantize_network(self._model))
        return self._quantized[1]

    @contextlib.contextmanager
    def use_params(self, params):
        averaged = {
            name: xp2torch(params[(self.id, name)], device=self.device)
            for name, _ in self._model.named_parameters()
            if (self.id, name) in params
        }
        if not averaged:
            yield
            return
        backup = {k: v.clone() for k, v in self._model.state_dict().items()}
        self._model.load_state_dict(averaged, strict=False)
        try:
            yield
        finally:
            self._model.load_state_dict(backup)


def get_torch_network(model: Model):
    """RETURNS (JMTNetwork): The torch module inside the model."""
    return model.get_ref("network").shims[0]._model


def get_inference_network(model: Model):
    """RETURNS (JMTNetwork): The torch module that predicts: the network, or its int8 copy
    where the component quantizes (spacy_jmt.quantize)."""
    return model.get_ref("network").shims[0].inference_network()


def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[JMTOutput, Callable]:
    tok2vec = model.get_ref("tok2vec")
    network = model.get_ref("network")
    frozen = model.attrs["frozen_tok2vec"]
    masks: Optional[List[Floats2d]] = None
    if is_train:
        Xs, backprop_tok2vec = tok2vec(docs, not frozen)
        rate = model.attrs.get("word_dropout", 0.0)
        if rate > 0:
            xp = model.ops.xp
            masks = [
                (xp.random.uniform(size=(len(X), 1)) >= rate).astype(X.dtype) / (1 - rate)
                for X in Xs
            ]
            Xs = [X * mask for X, mask in zip(Xs, masks)]
    else:
        Xs = tok2vec_in_pieces(tok2vec, docs, model.attrs["tok2vec_piece"])
    get_segments = model.attrs["get_segments"](docs, [len(doc) for doc in docs])
    group_length = None if is_train else model.attrs["sentence_group"]
    Y, backprop_network = network((Xs, get_segments, group_length), is_train)

    def backprop(dY: JMTOutput) -> Any:
        dXs = backprop_network(dY)
        if masks is not None:
            dXs = [dX * mask for dX, mask in zip(dXs, masks)]
        return [] if frozen else backprop_tok2vec(dXs)

    return Y, backprop


def tok2vec_in_pieces(tok2vec: Model, docs: List[Doc], piece_length: int) -> List[Floats2d]:
    """Predict the word vectors of docs; a doc longer than piece_length tokens is cut into
    pieces of that many tokens, each run with PIECE_CONTEXT tokens of context on either side.

    tok2vec (Model[List[Doc], List[Floats2d]]): The tok2vec layer.
    docs (List[Doc]): The docs.
    piece_length (int): The longest doc that runs whole.
    RETURNS (List[Floats2d]): One (len(doc), width) array per doc.
    """
    Xs: List[Optional[Floats2d]] = [None] * len(docs)
    short = [i for i, doc in enumerate(docs) if len(doc) <= piece_length]
    if short:  # together, as one batch
        for i, X in zip(short, tok2vec.predict([docs[i] for i in short])):
            Xs[i] = X
    for i, doc in enumerate(docs):
        if Xs[i] is not None:
            continue
        parts = []
        # What Span.as_doc copies, read once: per piece it would read the whole doc again.
        head = list(doc._get_array_attrs())
        array = doc.to_array(head)
        for start in range(0, len(doc), piece_length):
            end = min(start + piece_length, len(doc))
            left, right = max(start - PIECE_CONTEXT, 0), min(end + PIECE_CONTEXT, len(doc))
            piece = doc[left:right].as_doc(array_head=head, array=array)  # type: ignore[call-arg]
            X = tok2vec.predict([piece])[0]
            parts.append(X[start - left : end - left])
        Xs[i] = tok2vec.ops.xp.concatenate(parts, axis=0)
    return cast(List[Floats2d], Xs)


def _convert_inputs(
    model: Model, X: Tuple[List[Floats2d], Callable, Optional[int]], is_train: bool
):
    Xs, get_segments, group_length = X
    lengths = [x.shape[0] for x in Xs]
    ops = model.ops
    flat = ops.xp.concatenate(Xs, axis=0) if Xs else ops.alloc2f(0, 0)
    Xt = xp2torch(ops.asarray2f(flat), requires_grad=is_train)

    def convert_from_torch(dX: ArgsKwargs) -> List[Floats2d]:
        d_flat = torch2xp(dX.args[0])
        return ops.unflatten(cast(Floats2d, d_flat), ops.asarray1i(lengths))

    kwargs = {"get_segments": get_segments, "group_length": group_length}
    return ArgsKwargs(args=(Xt, lengths), kwargs=kwargs), convert_from_torch


def _convert_outputs(model: Model, inputs_outputs: Tuple[Any, JMTOutput], is_train: bool):
    _, Y = inputs_outputs

    def convert_for_torch(dY: JMTOutput) -> ArgsKwargs:
        tensors, grads = [], []
        for name, task_dY in dY.items():
            for key, grad in task_dY.items():
                if grad is not None:
                    tensors.append(Y[name][key])
                    grads.append(grad)
        return ArgsKwargs(args=(tensors,), kwargs={"grad_tensors": grads})

    return Y, convert_for_torch
