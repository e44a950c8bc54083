"""The hierarchical multi-task network (Hashimoto et al. 2017), in PyTorch.

Level 0 is the word representations themselves: tasks there (a sentence splitter) read the
whole doc. Their output bounds everything above: levels 1..K run per sentence, so the cost of
the stack is linear in the doc length and training batches have short sequences. Level k is
a BiLSTM whose input is the word representations (shortcut connection), the hidden states of
level k - 1, and the label embeddings of every task below k that embeds its labels. Each task
reads the level it sits at through its own head, plus the label embeddings of the tasks it
declares it reads. The network knows tasks only by their specs (`Task.spec`): it loops over
them the same way for every kind. Outputs come back in doc layout (batch, time, ...), except
what a head declares per sentence or per pair; tasks above level 0 also get the "segments"
(sentences).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from . import LOG_VARIANCES
from .communication import TaskGraph, senders
from .encoder import BiLSTM, Packing, Segment, pad_flat

# Called with the outputs of the level-0 tasks; returns the sentences of the batch.
GetSegments = Callable[[Dict[str, Dict[str, Any]]], List[Segment]]


@dataclass
class HeadInputs:
    """What a head reads besides its level.

    reads (List[Optional[Tensor]]): The label embeddings of the tasks it reads (its spec's
        "reads", in order): packed rows for token-level tasks, one row per pair for
        pair-level ones; None where a task has none.
    pairs (Optional[Tensor]): For a pair-level head, (n_pairs, 2) long: the segment indices
        of the two sentences of each pair.
    """

    reads: List[Optional[torch.Tensor]] = field(default_factory=list)
    pairs: Optional[torch.Tensor] = None


class JMTNetwork(nn.Module):
    """A stack of BiLSTM levels with task heads.

    width_in (int): Width of the word representations (the tok2vec output).
    width (int): Width of each level (both directions).
    tasks (List[Dict[str, Any]]): One spec per task (`Task.spec`): "name", "level" (0 = on
        the word representations), "embeds_labels", "communicates", "pair_level", "reads"
        (names of the tasks whose label embeddings its head reads; they come first) and
        "build_head" (width_in, sizes) -> nn.Module.
    label_width (int): Width of the label embeddings (0 disables them).
    shortcut (bool): Whether levels above the first also read the word representations.
    dropout (float): Dropout rate.
    communication (str): "none", "complete" or "star": messages between the task layers
        (spacy_jmt.layers.communication).
    head_sizes (Optional[Dict[str, int]]): Further widths the heads may read (the model's
        "arc_width", "label_width").
    loss_weights (str): "fixed", or "uncertainty": one learned log variance per task
        (Kendall et al. 2018), given in training as outputs[LOG_VARIANCES][task name]
        (shape (1,): Thinc's optimizer takes no 0-d parameters).
    """

    def __init__(
        self,
        width_in: int,
        width: int,
        tasks: List[Dict[str, Any]],
        label_width: int,
        shortcut: bool,
        dropout: float,
        communication: str = "none",
        head_sizes: Optional[Dict[str, int]] = None,
        loss_weights: str = "fixed",
    ):
        super().__init__()
        self.tasks = tasks
        self.shortcut = shortcut
        self.n_levels = max((t["level"] for t in tasks), default=1)
        self.in_dropout = nn.Dropout(dropout)
        levels = []
        for k in range(1, self.n_levels + 1):
            n_below = sum(1 for t in tasks if t["level"] < k and t["embeds_labels"])
            width_k = (width_in if k == 1 or shortcut else 0) + (width if k > 1 else 0)
            levels.append(BiLSTM(width_k + n_below * label_width, width, 1, dropout))
        self.levels = nn.ModuleList(levels)
        sizes = {
            "width": width, "label_embedding_width": label_width, "dropout": dropout,
            **(head_sizes or {}),
        }  # fmt: skip
        self.heads = nn.ModuleDict(
            {
                t["name"]: t["build_head"](width_in if t["level"] == 0 else width, sizes)
                for t in tasks
            }
        )
        self.graph = (
            TaskGraph(communication, tasks, width, width_in)
            if senders(communication, tasks)
            else None
        )
        self.log_variances = (
            nn.ParameterDict({t["name"]: nn.Parameter(torch.zeros(1)) for t in tasks})
            if loss_weights == "uncertainty"
            else None
        )
        # The first level from which on only pair-level tasks sit (None: another is on top).
        top = max((t["level"] for t in tasks if not t["pair_level"]), default=0)
        self.pairs_only_from = top + 1 if top < self.n_levels else None

    def forward(
        self,
        X: torch.Tensor,
        lengths: List[int],
        get_segments: GetSegments,
        group_length: Optional[int] = None,
    ) -> Dict[str, Dict[str, Any]]:
        """X (Tensor): (sum(lengths), width_in), the docs' word vectors concatenated.
        lengths (List[int]): Tokens per doc.
        get_segments (GetSegments): Gives the sentences, once the level-0 tasks have run.
        group_length (Optional[int]): Run the levels above 0 over groups of whole sentences
            of about this many tokens (`sentence_groups`): the same outputs, with memory for
            one group at a time beyond the outputs. None: all sentences at once (training).
        RETURNS (Dict[str, Dict[str, Any]]): Per task name, the head's outputs in doc layout
            (batch, T, ...) where they are per token, with its "segments" above level 0.
        """
        words = self.in_dropout(pad_flat(X, lengths))
        B, T, _ = words.shape
        outputs: Dict[str, Dict[str, Any]] = {}
        docs = Packing([(b, 0, n) for b, n in enumerate(lengths) if n], T)
        level0 = [t for t in self.tasks if t["level"] == 0]
        label_embs: Dict[str, torch.Tensor] = {}
        rows: Dict[str, Dict[str, Any]] = {}
        self._run_heads(level0, docs.pack(words), docs, rows, label_embs)
        joined: Dict[str, Dict[str, List[torch.Tensor]]] = {}
        self._merge(outputs, rows, 0, docs, B, T, joined)
        segments = get_segments(outputs)
        groups = [(0, len(segments))] if segments else []
        if segments and group_length is not None:
            groups = sentence_groups(segments, group_length)
        embs = {name: docs.unpack(e, B, T) for name, e in label_embs.items()}  # doc layout
        pair_docs, pairs = find_pairs(segments)
        for first, end in groups:
            keep = (pairs[:, 0] >= first) & (pairs[:, 0] < end)
            group_pairs = ([b for b, k in zip(pair_docs, keep.tolist()) if k], pairs[keep] - first)
            upper, packing = self._levels(words, embs, segments[first:end], group_pairs, B, T)
            self._merge(outputs, upper, first, packing, B, T, joined)
        for name, by_key in joined.items():
            for key, parts in by_key.items():
                outputs[name][key] = parts[0] if len(parts) == 1 else torch.cat(parts)
        for t in self.tasks:
            if t["level"] > 0 and t["name"] in outputs:
                outputs[t["name"]]["segments"] = segments
        if self.log_variances is not None and self.training:
            outputs[LOG_VARIANCES] = dict(self.log_variances.items())
        return outputs

    def _levels(
        self,
        words: torch.Tensor,
        embs: Dict[str, torch.Tensor],
        segments: List[Segment],
        pairs: Tuple[List[int], torch.Tensor],
        B: int,
        T: int,
    ) -> Tuple[Dict[str, Dict[str, Any]], Packing]:
        """Run levels 1..K and their heads over these sentences.

        words (Tensor): (B, T, width_in) the word representations, doc layout.
        embs (Dict[str, Tensor]): The level-0 tasks' label embeddings, doc layout.
        segments (List[Segment]): The sentences.
        pairs (Tuple[List[int], Tensor]): The sentence pairs among them (`find_pairs`).
        RETURNS (Tuple[Dict[str, Dict[str, Any]], Packing]): The outputs of the tasks above
            level 0 as `_run_heads` gives them (packed rows; sentence indices relative to
            these segments), and the packing of their rows.
        """
        outputs: Dict[str, Dict[str, Any]] = {}
        sents = packing = Packing(segments, T)  # the packing of all row outputs
        rows = sents.pack(words)
        label_embs = {name: sents.pack(e) for name, e in embs.items()}
        H = None
        talk = None if self.graph is None else Talk(self.graph, rows)
        for k, level in enumerate(self.levels, start=1):
            if k == self.pairs_only_from:  # go on with the pair docs only
                if not pairs[0]:
                    break
                kept = Packing([segments[i] for i in pairs[1].flatten().tolist()], T)
                rows = repack(rows, sents, kept, B, T)
                H = None if H is None else repack(H, sents, kept, B, T)
                label_embs = {n: repack(e, sents, kept, B, T) for n, e in label_embs.items()}
                sents, pairs = kept, (pairs[0], torch.arange(2 * len(pairs[0])).view(-1, 2))
            parts = [rows] if H is None or self.shortcut else []
            parts += ([H] if H is not None else []) + list(label_embs.values())
            H = level(torch.cat(parts, dim=-1), sents)
            tasks = [t for t in self.tasks if t["level"] == k]
            if talk is not None:
                talk.levels[k] = H
            self._run_heads(tasks, H, sents, outputs, label_embs, pairs, talk)
        return outputs, packing

    def _run_heads(
        self,
        tasks: List[Dict[str, Any]],
        H: torch.Tensor,
        packing: Packing,
        outputs: Dict[str, Dict[str, Any]],
        label_embs: Dict[str, torch.Tensor],
        pairs: Optional[Tuple[List[int], torch.Tensor]] = None,
        talk: Optional["Talk"] = None,
    ) -> None:
        """Run the heads of these tasks on packed rows H; store their outputs (per token:
        packed rows, see `merge_outputs`) and move the label embeddings of the tasks that
        embed their labels (packed rows) to label_embs. A pair-level head runs on the pairs
        (the docs, and their two segments in the packing) if there are any. With `talk`, a
        task hears the others first (its weights go to its outputs' "messages")."""
        for t in tasks:
            name = t["name"]
            if t["pair_level"] and (pairs is None or not pairs[0]):
                continue
            H_t, messages = H, None  # what the task's head reads
            if talk is not None and name in talk.graph.senders:
                H_t, messages = talk.graph(name, H, talk.levels, talk.words, talk.cache)
            reads = [label_embs.get(n, outputs.get(n, {}).get("label_emb")) for n in t["reads"]]
            inputs = HeadInputs(reads, pairs[1] if t["pair_level"] and pairs else None)
            out = self.heads[name](H_t, packing, inputs)
            if t["pair_level"] and pairs:
                out["docs"] = pairs[0]
            elif t["embeds_labels"] and "label_emb" in out:
                label_embs[name] = out.pop("label_emb")
            if messages is not None:
                out["messages"] = messages.detach()
            outputs[name] = out

    def _merge(
        self,
        outputs: Dict[str, Dict[str, Any]],
        group: Dict[str, Dict[str, Any]],
        first: int,
        packing: Packing,
        B: int,
        T: int,
        joined: Dict[str, Dict[str, List[torch.Tensor]]],
    ) -> None:
        for name, out in group.items():
            merge_outputs(outputs.setdefault(name, {}), out, self.heads[name], first, packing, B, T,
                          joined.setdefault(name, {}))  # fmt: skip


def sentence_groups(segments: List[Segment], size: int) -> List[Tuple[int, int]]:
    """Cut the sentences of a batch into consecutive groups of about `size` tokens (a group
    ends once it holds at least `size`), never between the two sentences of a pair doc.

    RETURNS (List[Tuple[int, int]]): (first, end) indices into segments, in order.
    """
    per_doc: Dict[int, int] = defaultdict(int)
    for b, _, _ in segments:
        per_doc[b] += 1
    groups, first, tokens = [], 0, 0
    for i, (b, start, end) in enumerate(segments):
        pair_second = per_doc[b] == 2 and i > 0 and segments[i - 1][0] == b
        if tokens >= size and not pair_second:
            groups.append((first, i))
            first, tokens = i, 0
        tokens += end - start
    groups.append((first, len(segments)))
    return groups


def merge_outputs(
    merged: Dict[str, Any],
    out: Dict[str, Any],
    head: nn.Module,
    first: int,
    packing: Packing,
    B: int,
    T: int,
    joined: Dict[str, List[torch.Tensor]],
) -> None:
    """Put one task's outputs of a group of sentences (from `_levels`: per-token outputs as
    rows of `packing`, sentence indices starting at `first` of the batch's) into the batch's
    outputs, as the head's class declares them (spacy_jmt.heads): per-token outputs and the
    network's "messages" go to doc layout (written in place where an earlier group made the
    tensor); per-sentence and per-pair outputs are collected in `joined`, to be concatenated
    once all groups are in; lists of sentences are offset and extended, the pair "docs"
    extended; anything else is the same in every group."""
    rows: Tuple[str, ...] = getattr(head, "row_outputs", ())
    per_item: Tuple[str, ...] = getattr(head, "joined_outputs", ())
    per_segment: Tuple[str, ...] = getattr(head, "segment_outputs", ())
    for key, value in out.items():
        if key in rows or key == "messages":
            merged[key] = packing.unpack(value, B, T, into=merged.get(key))
        elif key in per_item:
            joined.setdefault(key, []).append(value)
        elif key in per_segment:
            merged.setdefault(key, []).extend((sents + first, v) for sents, v in value)
        elif key == "docs":
            merged.setdefault(key, []).extend(value)
        else:
            merged.setdefault(key, value)


class Talk:
    """What the task graph needs during one forward pass: the level outputs so far, the word
    representations and the senders' keys and values (all packed rows of the sentences)."""

    def __init__(self, graph: TaskGraph, words: torch.Tensor):
        self.graph = graph
        self.words = words
        self.levels: Dict[int, torch.Tensor] = {}
        self.cache: Dict[str, Tuple[torch.Tensor, torch.Tensor]] = {}


def repack(rows: torch.Tensor, old: Packing, new: Packing, B: int, T: int) -> torch.Tensor:
    """Move packed rows from one packing to another that covers some of the same tokens."""
    return new.pack(old.unpack(rows, B, T))


def find_pairs(segments: List[Segment]) -> Tuple[List[int], torch.Tensor]:
    """The docs that consist of exactly two segments (sentence pairs).

    segments (List[Segment]): The segments of the batch, in doc order.
    RETURNS (Tuple[List[int], Tensor]): The doc indices of the pairs, and (n_pairs, 2) long:
        the indices of their first and second segment.
    """
    by_doc: Dict[int, List[int]] = defaultdict(list)
    for i, (b, _, _) in enumerate(segments):
        by_doc[b].append(i)
    docs = sorted(b for b, indices in by_doc.items() if len(indices) == 2)
    pairs = torch.tensor([by_doc[b] for b in docs], dtype=torch.long).view(-1, 2)
    return docs, pairs
