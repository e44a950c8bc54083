"""The hierarchical multi-task network (Hashimoto et al. 2017), in PyTorch.

Level k is a BiLSTM whose input is the word representations (shortcut connection), the
hidden states of level k - 1, and the label embeddings of every task at a level below k.
Each task reads the level it sits at through its own head.
"""

from typing import Any, Callable, Dict, List, Optional

import torch
from torch import nn

from .encoder import BiLSTM, pad_flat
from .heads import BiaffineHead, Segment, TaggerHead

# Called with the outputs computed so far; returns the parser's sentences.
GetSegments = Callable[[Dict[str, Dict[str, Any]]], List[Segment]]


class JMTNetwork(nn.Module):
    """A stack of BiLSTM levels with task heads.

    width_in (int): Width of the word representations (the tok2vec output).
    width (int): Width of each level (both directions).
    tasks (List[Dict[str, Any]]): One dict per task: "name", "kind", "level" (1-based), "depth",
        "n_labels", in level order.
    label_width (int): Width of the label embeddings (0 disables them).
    shortcut (bool): Whether levels above the first also read the word representations.
    dropout (float): Dropout rate.
    """

    def __init__(
        self,
        width_in: int,
        width: int,
        tasks: List[Dict[str, Any]],
        label_width: int,
        shortcut: bool,
        dropout: float,
    ):
        super().__init__()
        self.tasks = tasks
        self.shortcut = shortcut
        self.n_levels = max((t["level"] for t in tasks), default=1)
        self.in_dropout = nn.Dropout(dropout)
        levels = []
        for k in range(1, self.n_levels + 1):
            n_below = sum(1 for t in tasks if t["level"] < k and t["kind"] != "parsing")
            width_k = (width_in if k == 1 or shortcut else 0) + (width if k > 1 else 0)
            levels.append(BiLSTM(width_k + n_below * label_width, width, 1, dropout))
        self.levels = nn.ModuleList(levels)
        heads = {}
        for t in tasks:
            if t["kind"] == "parsing":
                heads[t["name"]] = BiaffineHead(
                    width, t["n_labels"], t["depth"], width, t["arc_width"], t["label_width"],
                    dropout,
                )  # fmt: skip
            else:
                heads[t["name"]] = TaggerHead(
                    width, t["n_labels"], t["depth"], width, label_width, dropout
                )
        self.heads = nn.ModuleDict(heads)

    def forward(
        self, X: torch.Tensor, lengths: List[int], get_segments: Optional[GetSegments] = None
    ) -> Dict[str, Dict[str, Any]]:
        """X (Tensor): (sum(lengths), width_in), the docs' word vectors concatenated.
        lengths (List[int]): Tokens per doc.
        get_segments (Optional[GetSegments]): Gives the parser its sentences.
        RETURNS (Dict[str, Dict[str, Any]]): Per task name, the head's outputs.
        """
        words = self.in_dropout(pad_flat(X, lengths))
        lens = torch.tensor([max(n, 1) for n in lengths], dtype=torch.long)
        outputs: Dict[str, Dict[str, Any]] = {}
        label_embs: List[torch.Tensor] = []
        H: Optional[torch.Tensor] = None
        for k, level in enumerate(self.levels, start=1):
            parts = [words] if H is None or self.shortcut else []
            parts += ([H] if H is not None else []) + label_embs
            H = level(torch.cat(parts, dim=-1), lens)
            for t in self.tasks:
                if t["level"] != k:
                    continue
                head = self.heads[t["name"]]
                if t["kind"] == "parsing":
                    segments = get_segments(outputs) if get_segments else []
                    outputs[t["name"]] = {**head(H, lens, segments), "segments": segments}
                else:
                    outputs[t["name"]], emb = head(H, lens)
                    if emb is not None:
                        label_embs.append(emb)
        return outputs
