"""The task-to-task weights of a component with communication: averaged over a corpus
(`task_weights`, behind `JMT.task_weights`) and drawn as standalone SVG heatmaps."""

from html import escape
from typing import Any, Dict, Iterable, List, Sequence

import numpy
from spacy import util
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc

from .model import get_torch_network

CELL = 44  # pixels per cell
FONT = 12


def heatmap_svg(
    values: Sequence[Sequence[float]],
    rows: List[str],
    columns: List[str],
    title: str = "",
    row_axis: str = "receiver",
    column_axis: str = "sender",
    note: str = "↓ receiver; each row sums to 1 over what it may hear",
) -> str:
    """Draw a matrix of values in [0, 1] as an SVG heatmap with labelled axes.

    values (Sequence[Sequence[float]]): len(rows) x len(columns) values in [0, 1].
    rows (List[str]): The row labels (top to bottom).
    columns (List[str]): The column labels (left to right).
    title (str): A title above the map.
    row_axis (str): The name of the row axis.
    column_axis (str): The name of the column axis.
    note (str): A line under the map.
    RETURNS (str): The SVG document.
    """
    if len(values) != len(rows) or any(len(row) != len(columns) for row in values):
        raise ValueError(f"values must be {len(rows)} x {len(columns)}")
    longest_row = max([len(r) for r in rows] + [4])
    longest_column = max([len(c) for c in columns] + [4])
    left = FONT * (longest_row * 0.62 + 2)  # room for the row labels
    top = FONT * (2 + (2 if title else 0) + longest_column * 0.62)  # and the column labels
    right = FONT * (longest_column * 0.45 + 1)  # the last column label leans right
    width = max(left + CELL * len(columns) + right, FONT * (len(title) * 0.62 + 2))
    height = top + CELL * len(rows) + 3 * FONT
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'font-family="sans-serif" font-size="{FONT}">'
    ]
    if title:
        out.append(_text(width / 2, 1.5 * FONT, title, 'text-anchor="middle" font-weight="bold"'))
    middle = left + CELL * len(columns) / 2
    out.append(_text(middle, top - 0.2 * FONT, f"{column_axis} →", _AXIS))
    for c, name in enumerate(columns):
        x, y = left + CELL * (c + 0.5), top - 1.6 * FONT
        out.append(_text(x, y, name, f'transform="rotate(-45 {x:.1f} {y:.1f})"'))
    for r, name in enumerate(rows):
        y = top + CELL * (r + 0.5) + 0.35 * FONT
        out.append(_text(left - FONT / 2, y, name, 'text-anchor="end"'))
        for c, value in enumerate(values[r]):
            v = min(max(float(value), 0.0), 1.0)
            shade = round(255 * (1 - v))  # white (0) to blue (1)
            x0, y0 = left + CELL * c, top + CELL * r
            out.append(
                f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{CELL}" height="{CELL}" '
                f'fill="rgb({shade},{shade},255)" stroke="#ccc"/>'
            )
            colour = "white" if v > 0.55 else "black"
            attrs = f'text-anchor="middle" fill="{colour}"'
            out.append(_text(x0 + CELL / 2, y0 + CELL / 2 + 0.35 * FONT, f"{v:.2f}", attrs))
    out.append(_text(FONT, top + CELL * len(rows) + 2 * FONT, note, 'font-style="italic"'))
    out.append("</svg>")
    return "\n".join(out) + "\n"


_AXIS = 'text-anchor="middle" font-style="italic"'


def _text(x: float, y: float, text: str, attrs: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" {attrs}>{escape(text)}</text>'


def task_weights(
    component: TrainablePipe, docs: Iterable[Doc], batch_size: int = 64
) -> Dict[str, Any]:
    """The learned task-to-task weights of a `jmt` component's communication graph (model
    setting `communication`): how much each task listened to each other task, token by token.

    component (TrainablePipe): The `jmt` component, initialized.
    docs (Iterable[Doc]): The docs to run the network on (their annotation is not read).
    batch_size (int): Docs per forward pass.
    RETURNS (Dict[str, Any]): "tasks": the nodes (task names, in order); "mean":
        (n_tasks, n_tasks) array, receiver x sender, the weights averaged over all tokens
        (each row of a task that hears anyone sums to 1; zeros where a task may not
        hear another); "per_token": one (len(doc), n_tasks, n_tasks) array per doc;
        "n_tokens": the tokens averaged over.
    """
    initialized = component.model.has_ref("network")
    graph = get_torch_network(component.model).graph if initialized else None
    if graph is None:
        raise ValueError(
            f"Component '{component.name}' has no communication between its tasks (model "
            'setting `communication` is "none")'
        )
    names = list(graph.node_level)
    index = {name: i for i, name in enumerate(names)}
    per_token: List[numpy.ndarray] = []
    for batch in util.minibatch(docs, size=batch_size):  # lazily: progress bars advance
        weights = [numpy.zeros((len(doc), len(names), len(names)), "f") for doc in batch]
        outputs = component.predict(batch)
        for receiver, heard in graph.senders.items():
            if "messages" not in outputs.get(receiver, {}):
                continue
            messages = outputs[receiver]["messages"].numpy()  # (batch, T, n_senders)
            columns = [index[j] for j in heard]
            for b, doc in enumerate(batch):
                weights[b][:, index[receiver], columns] = messages[b, : len(doc)]
        per_token.extend(weights)
    n_tokens = sum(len(w) for w in per_token)
    total = sum((w.sum(0) for w in per_token), numpy.zeros((len(names), len(names)), "f"))
    mean = total / max(n_tokens, 1)
    return {"tasks": names, "mean": mean, "per_token": per_token, "n_tokens": n_tokens}
