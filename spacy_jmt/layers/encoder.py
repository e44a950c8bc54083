"""BiLSTM building blocks over packed token rows, shared by the levels and the task heads.

The network keeps every token as one row of a 2d tensor in *packed order* (the time-major
order of torch's PackedSequence), so that no op runs over padding: the LSTMs take the rows
as they are, and everything else (MLPs, label embeddings, concatenation) is row-wise.
"""

from typing import List, Optional, Tuple

import numpy
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

# A sequence: (doc index in the batch, first token, end token).
Segment = Tuple[int, int, int]


class Packing:
    """Where the tokens of a list of sequences go in packed order.

    segments (List[Segment]): The sequences (sentences, or whole docs).
    T (int): The padded doc length, so that doc token (b, i) is row b * T + i of the
        flattened (batch * T) doc layout.
    """

    def __init__(self, segments: List[Segment], T: int):
        lengths = numpy.asarray([end - start for _, start, end in segments], dtype="int64")
        firsts = numpy.asarray([b * T + start for b, start, _ in segments], dtype="int64")
        order = numpy.argsort(-lengths, kind="stable")  # rank -> segment
        self.order = torch.from_numpy(order)
        rank = numpy.empty_like(order)
        rank[order] = numpy.arange(len(order))
        longest = int(lengths.max()) if len(lengths) else 0
        batch_sizes = (lengths[order][None, :] > numpy.arange(longest)[:, None]).sum(1)
        offsets = numpy.concatenate([[0], numpy.cumsum(batch_sizes)[:-1]]).astype("int64")
        # Row of packed position p in the flattened doc layout.
        self.doc_rows = torch.from_numpy(
            numpy.concatenate(
                [firsts[order[:bs]] + t for t, bs in enumerate(batch_sizes)]
                or [numpy.zeros(0, dtype="int64")]
            ).astype("int64")
        )
        self.batch_sizes = torch.from_numpy(batch_sizes.astype("int64"))
        self.lengths = torch.from_numpy(lengths)
        # (n_segments, longest): packed position of token t of segment s, or -1 (padding).
        t = numpy.arange(longest)
        padded = offsets[None, :] + rank[:, None]
        self.padded = torch.from_numpy(numpy.where(t[None, :] < lengths[:, None], padded, -1))

    @property
    def n_rows(self) -> int:
        return len(self.doc_rows)

    def pack(self, X: torch.Tensor) -> torch.Tensor:
        """Doc layout (batch, T, width) -> packed rows (n_rows, width)."""
        return X.reshape(-1, X.shape[-1])[self.doc_rows]

    def unpack(
        self, rows: torch.Tensor, B: int, T: int, into: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Packed rows (n_rows, width) -> doc layout (batch, T, width), zeros elsewhere.

        into (Optional[Tensor]): Write the rows into this doc-layout tensor in place (no
            autograd) instead of into a new one of zeros; returns it.
        """
        if into is not None:
            into.view(B * T, rows.shape[-1]).index_copy_(0, self.doc_rows, rows)
            return into
        out = rows.new_zeros(B * T, rows.shape[-1]).index_copy(0, self.doc_rows, rows)
        return out.view(B, T, rows.shape[-1])

    def pad(self, rows: torch.Tensor, segments: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Packed rows -> (n_segments, longest, width), in segment order, zeros for padding.

        segments (Optional[Tensor]): Only these segments, padded to their own longest.
        """
        positions = self.padded
        if segments is not None:
            positions = positions[segments, : int(self.lengths[segments].max())]
        padded = rows[positions.clamp(min=0)]  # only the output is copied, not all rows
        return padded.masked_fill((positions < 0)[..., None], 0.0)

    def buckets(self, size: int) -> List[torch.Tensor]:
        """RETURNS (List[Tensor]): The segment indices in groups of up to `size` segments of
        similar length, so that padding each group to its own longest wastes little."""
        return list(self.order.split(size))


class BiLSTM(nn.Module):
    """A stack of bidirectional LSTM layers over packed rows.

    width_in (int): Input feature width.
    width (int): Output width (both directions together; must be even).
    depth (int): Number of stacked layers.
    dropout (float): Dropout on the input of every layer.
    """

    def __init__(self, width_in: int, width: int, depth: int = 1, dropout: float = 0.0):
        super().__init__()
        if width % 2:
            raise ValueError(f"BiLSTM width must be even, got {width}")
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            nn.LSTM(width_in if i == 0 else width, width // 2, bidirectional=True)
            for i in range(depth)
        )

    def forward(self, rows: torch.Tensor, packing: Packing) -> torch.Tensor:
        """rows (Tensor): (n_rows, width_in) in packed order. RETURNS (Tensor): (n_rows, width)."""
        for lstm in self.layers:
            out, _ = lstm(PackedSequence(self.dropout(rows), packing.batch_sizes))
            rows = out.data
        return rows


class MLP(nn.Sequential):
    """Linear -> ReLU -> dropout, the projection in front of every scorer."""

    def __init__(self, width_in: int, width: int, dropout: float = 0.0):
        super().__init__(nn.Linear(width_in, width), nn.ReLU(), nn.Dropout(dropout))


def pad_flat(X: torch.Tensor, lengths: List[int]) -> torch.Tensor:
    """Scatter a (sum(lengths), width) tensor into a zero-padded (batch, max_len, width) tensor.

    X (Tensor): The concatenated rows of all docs.
    lengths (List[int]): Rows per doc.
    RETURNS (Tensor): (batch, max(max(lengths), 1), width).
    """
    batch, max_len = len(lengths), max(max(lengths, default=0), 1)
    index = torch.cat([torch.arange(n) + i * max_len for i, n in enumerate(lengths)])
    padded = X.new_zeros(batch * max_len, X.shape[1])
    padded = padded.index_copy(0, index, X) if len(index) else padded
    return padded.view(batch, max_len, X.shape[1])
