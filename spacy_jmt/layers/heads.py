"""Task heads: the layers a task owns on top of the level it sits at."""

from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from .encoder import MLP, BiLSTM

# A sentence for the parser: (doc index in the batch, first token, end token).
Segment = Tuple[int, int, int]


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
        self, H: torch.Tensor, lengths: torch.Tensor
    ) -> Tuple[Dict[str, torch.Tensor], Optional[torch.Tensor]]:
        """H (Tensor): (batch, time, width_in). RETURNS: ({"logits": (batch, time, n_labels)},
        the label embedding (batch, time, label_width) or None).
        """
        if self.own is not None:
            H = self.own(H, lengths)
        logits = self.out(self.mlp(H))
        emb = None
        if self.label_embed is not None:
            emb = self.label_embed(torch.softmax(logits, dim=-1))
        return {"logits": logits}, emb


class BiaffineHead(nn.Module):
    """Biaffine dependency scorer (Dozat and Manning 2017), bounded by sentence.

    Arc scores are computed per sentence only, so memory is quadratic in the sentence length,
    never in the document length. Label scores cover every (dependent, head) pair of a
    sentence so that the decoder can label whatever tree it picks.

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

    def forward(
        self, H: torch.Tensor, lengths: torch.Tensor, segments: List[Segment]
    ) -> Dict[str, torch.Tensor]:
        """H (Tensor): (batch, time, width_in). segments (List[Segment]): the sentences.
        RETURNS (Dict[str, Tensor]): "arc" (n_sents, n, n + 1) scores of dependent i taking
        head j (j = 0 is the root), "label" (n_sents, n, n + 1, n_labels), where n is the
        longest sentence; padding positions score -inf in "arc".
        """
        if self.own is not None:
            H = self.own(H, lengths)
        n = max((end - start for _, start, end in segments), default=0)
        S = len(segments)
        # Gather every sentence into (S, n + 1, width) with the root vector in front.
        sents = H.new_zeros(S, n + 1, H.shape[-1])
        sents[:, 0] = self.root
        mask = torch.zeros(S, n + 1, dtype=torch.bool)
        for s, (b, start, end) in enumerate(segments):
            sents[s, 1 : end - start + 1] = H[b, start:end]
            mask[s, : end - start + 1] = True
        dep, head = self.arc_dep(sents[:, 1:]), self.arc_head(sents)
        arc = dep @ self.arc_W @ head.transpose(1, 2) + self.arc_b(head).transpose(1, 2)
        self_loop = torch.eye(n, n + 1, dtype=torch.bool).roll(1, dims=1)
        arc = arc.masked_fill(~mask[:, None, :] | self_loop, float("-inf"))
        ones = sents.new_ones(S, n + 1, 1)
        ldep = torch.cat([self.lab_dep(sents[:, 1:]), ones[:, 1:]], -1)
        lhead = torch.cat([self.lab_head(sents), ones], -1)
        label = torch.einsum("sid,ldk,sjk->sijl", ldep, self.lab_W, lhead)
        return {"arc": arc, "label": label}
