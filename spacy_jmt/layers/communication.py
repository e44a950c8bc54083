"""Tasks that talk to each other: message passing between task layers (Liu et al. 2019,
"Learning Multi-Task Communication with Message Passing for Sequence Learning").

Every task above level 0 whose spec says it communicates is a node (pair-level tasks, which
run on pair docs only, do not). Its state at a token is the level it
reads; before its head runs, the node receives a message: a weighted sum of the other
nodes' values at the same token, with input-dependent weights (attention) that sum to one,
added to its state through a gate. A task only hears the tasks at its own level or below,
so the hierarchy still decides what it may read.

- complete: each task attends from its own state over every other task it may read.
- star: a hub that every task writes to and reads from: one query from the word
  representations attends over all the tasks (the reader included) that the reader may
  read, and each task reads the hub through its own gate.
- none: no messages; the network is the plain hierarchy.

The weights (receiver x sender, per token) come back with each receiver's outputs as
"messages" (doc layout, one column per sender in `senders[receiver]` order), so that the
component can average them over a corpus or show them for one doc.
"""

import math
from typing import Dict, List, Tuple

import torch
from torch import nn

from . import STRUCTURES


def communicating_tasks(tasks: List[Dict]) -> List[Dict]:
    """RETURNS (List[Dict]): The task specs that are nodes of the graph, in task order (level
    0 runs on whole docs, before the sentences are known, so it takes no part)."""
    return [t for t in tasks if t["level"] >= 1 and t["communicates"]]


def senders(structure: str, tasks: List[Dict]) -> Dict[str, List[str]]:
    """Who each task hears: the tasks at its level or below (itself too on a star).

    structure (str): "complete" or "star" ("none": nobody hears anybody).
    tasks (List[Dict]): The task specs ("name", "level", "communicates").
    RETURNS (Dict[str, List[str]]): Receiver -> senders, for every node with any.
    """
    if structure not in STRUCTURES:
        raise ValueError(f"Unknown communication {structure!r}; accepted: {STRUCTURES}")
    nodes = communicating_tasks(tasks) if structure != "none" else []
    found = {
        i["name"]: [
            j["name"] for j in nodes
            if j["level"] <= i["level"] and (j is not i or structure == "star")
        ]
        for i in nodes
    }  # fmt: skip
    return {name: heard for name, heard in found.items() if heard}


class TaskGraph(nn.Module):
    """Gated, attention-weighted messages between task nodes (see the module docstring).

    structure (str): "complete" or "star".
    tasks (List[Dict]): The task specs ("name", "level", "communicates").
    width (int): Width of the levels (node states, values).
    words_width (int): Width of the word representations (the star hub's query reads them).
    key_width (int): Width of the attention keys and queries.
    """

    def __init__(
        self, structure: str, tasks: List[Dict], width: int, words_width: int, key_width: int = 64
    ):
        super().__init__()
        self.structure = structure
        self.senders = senders(structure, tasks)
        # The nodes, in task order, and the level each one reads.
        self.node_level = {t["name"]: t["level"] for t in communicating_tasks(tasks)}
        heard = sorted({j for js in self.senders.values() for j in js})
        self.key = nn.ModuleDict({j: nn.Linear(width, key_width) for j in heard})
        self.value = nn.ModuleDict({j: nn.Linear(width, width) for j in heard})
        if structure == "complete":
            self.query = nn.ModuleDict({i: nn.Linear(width, key_width) for i in self.senders})
        else:
            self.hub_query = nn.Linear(words_width, key_width)
        self.gate = nn.ModuleDict({i: nn.Linear(2 * width, width) for i in self.senders})
        self.scale = 1.0 / math.sqrt(key_width)

    def forward(
        self,
        name: str,
        H: torch.Tensor,
        levels: Dict[int, torch.Tensor],
        words: torch.Tensor,
        cache: Dict[str, Tuple[torch.Tensor, torch.Tensor]],
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Pass the messages to one task.

        name (str): The receiving task (one of `self.senders`).
        H (Tensor): (n_rows, width) the receiver's state: the level it reads, packed rows.
        levels (Dict[int, Tensor]): The outputs of the levels run so far, same rows.
        words (Tensor): (n_rows, words_width) the word representations, same rows.
        cache (Dict): The senders' keys and values of this forward pass (filled here).
        RETURNS (Tuple[Tensor, Tensor]): The receiver's new state (n_rows, width) and the
            weights (n_rows, n_senders), which sum to 1 over the senders.
        """
        keys, values = [], []
        for j in self.senders[name]:
            if j not in cache:
                state = levels[self.node_level[j]]
                cache[j] = (self.key[j](state), self.value[j](state))
            keys.append(cache[j][0])
            values.append(cache[j][1])
        query = self.query[name](H) if self.structure == "complete" else self.hub_query(words)
        scores = torch.stack([(k * query).sum(-1) for k in keys], -1) * self.scale
        weights = torch.softmax(scores, dim=-1)  # (n_rows, n_senders)
        message = (weights.unsqueeze(-1) * torch.stack(values, 1)).sum(1)
        gate = torch.sigmoid(self.gate[name](torch.cat([H, message], -1)))
        return H + gate * message, weights
