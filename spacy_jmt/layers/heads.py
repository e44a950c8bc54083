"""Task heads: the layers a task owns on top of the level it sits at."""

from typing import Dict, Optional, Tuple

import torch
from torch import nn

from .encoder import MLP, BiLSTM, Packing


class TaggerHead(nn.Module):
    """Token classification: optional own BiLSTM layers, an MLP and a softmax layer.

    Its label embedding is the predicted label distribution times a learned matrix, which the
    levels above read (JMT's label embeddings).

    width_in (int): Width of the level it reads.
    n_labels (int): Number of output labels.
    depth (int): Own BiLSTM layers before the classifier (Crone 2020's task-specific depth).
    width (int): Hidden width of the own layers and the MLP.
    label_width (int): Width of the label embedding; 0 for none.
    dropout (float): Dropout rate.
    """

    def __init__(
        self,
        width_in: int,
        n_labels: int,
        depth: int,
        width: int,
        label_width: int,
        dropout: float,
    ):
        super().__init__()
        self.own = BiLSTM(width_in, width, depth, dropout) if depth else None
        self.mlp = MLP(width if depth else width_in, width, dropout)
        self.out = nn.Linear(width, n_labels)
        self.label_embed = nn.Linear(n_labels, label_width, bias=False) if label_width else None

    def forward(
        self, H: torch.Tensor, packing: Packing
    ) -> Tuple[Dict[str, torch.Tensor], Optional[torch.Tensor]]:
        """H (Tensor): (n_rows, width_in) packed rows. RETURNS: ({"logits": (n_rows,
        n_labels)}, the label embedding (n_rows, label_width) or None).
        """
        if self.own is not None:
            H = self.own(H, packing)
        logits = self.out(self.mlp(H))
        emb = None
        if self.label_embed is not None:
            emb = self.label_embed(torch.softmax(logits, dim=-1))
        return {"logits": logits}, emb


class BiaffineHead(nn.Module):
    """Biaffine dependency scorer (Dozat and Manning 2017), bounded by sentence.

    Arc scores are computed per sentence only, so memory is quadratic in the sentence length,
    never in the document length. Labels are scored only for the arcs that matter (the gold
    arcs in training, the decoded tree at inference): the head returns the per-token label
    features and the bilinear label weights, and the parsing task scores the pairs it needs.

    width_in (int): Width of the level it reads.
    n_labels (int): Number of dependency labels.
    depth (int): Own BiLSTM layers.
    width (int): Width of the own BiLSTM layers.
    arc_width (int): Width of the arc MLPs.
    label_width (int): Width of the label MLPs.
    dropout (float): Dropout rate.
    """

    def __init__(
        self,
        width_in: int,
        n_labels: int,
        depth: int,
        width: int,
        arc_width: int,
        label_width: int,
        dropout: float,
    ):
        super().__init__()
        self.own = BiLSTM(width_in, width, depth, dropout) if depth else None
        width_in = width if depth else width_in
        self.root = nn.Parameter(torch.zeros(width_in))
        self.arc_dep = MLP(width_in, arc_width, dropout)
        self.arc_head = MLP(width_in, arc_width, dropout)
        self.lab_dep = MLP(width_in, label_width, dropout)
        self.lab_head = MLP(width_in, label_width, dropout)
        self.arc_W = nn.Parameter(torch.zeros(arc_width, arc_width))
        self.arc_b = nn.Linear(arc_width, 1, bias=False)
        self.lab_W = nn.Parameter(torch.zeros(n_labels, label_width + 1, label_width + 1))

    def forward(self, H: torch.Tensor, packing: Packing) -> Dict[str, torch.Tensor]:
        """H (Tensor): (n_rows, width_in) packed rows of the sentences.
        RETURNS (Dict[str, Tensor]): "arc" (n_sents, n, n + 1): scores of dependent i taking
        head j (j = 0 is the root; n is the longest sentence; padding and self-loops score
        -inf); "lab_dep", "lab_head" (n_rows, label_width + 1) and "lab_root"
        (label_width + 1,): label features with a bias feature; "lab_W" (n_labels,
        label_width + 1, label_width + 1): the bilinear label weights.
        """
        if self.own is not None:
            H = self.own(H, packing)
        dep_rows = self.arc_dep(H) @ self.arc_W  # row-wise first: no work on padding
        head_rows = self.arc_head(H)
        root = self.arc_head(self.root)
        n = int(packing.lengths.max())
        groups, parts = packing.buckets(64), []
        for group in groups:  # sentences of similar length together
            dep = packing.pad(dep_rows, group)
            g, m, _ = dep.shape
            head = torch.cat([root.expand(g, 1, -1), packing.pad(head_rows, group)], 1)
            scores = dep @ head.transpose(1, 2) + self.arc_b(head).transpose(1, 2)
            is_pad = torch.arange(m + 1)[None, :] > packing.lengths[group][:, None]
            self_loop = torch.eye(m, m + 1, dtype=torch.bool).roll(1, dims=1)
            scores = scores.masked_fill(is_pad[:, None, :] | self_loop, float("-inf"))
            parts.append(nn.functional.pad(scores, (0, n - m, 0, n - m), value=float("-inf")))
        arc = torch.cat(parts)[torch.cat(groups).argsort()]  # back to segment order
        ones = H.new_ones(H.shape[0], 1)
        return {
            "arc": arc,
            "lab_dep": torch.cat([self.lab_dep(H), ones], -1),
            "lab_head": torch.cat([self.lab_head(H), ones], -1),
            "lab_root": torch.cat([self.lab_head(self.root), self.root.new_ones(1)]),
            "lab_W": self.lab_W,
        }
