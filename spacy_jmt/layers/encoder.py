"""BiLSTM building blocks shared by the hierarchy levels and the task heads."""

from typing import List

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class BiLSTM(nn.Module):
    """A stack of bidirectional LSTM layers over padded batches.

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
            nn.LSTM(width_in if i == 0 else width, width // 2, batch_first=True, bidirectional=True)
            for i in range(depth)
        )

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """X (Tensor): (batch, time, width_in). lengths (Tensor): CPU int64 (batch,), all >= 1.
        RETURNS (Tensor): (batch, time, width), zeros at padded positions.
        """
        for lstm in self.layers:
            packed = pack_padded_sequence(
                self.dropout(X), lengths, batch_first=True, enforce_sorted=False
            )
            out, _ = lstm(packed)
            X, _ = pad_packed_sequence(out, batch_first=True, total_length=X.shape[1])
        return X


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
