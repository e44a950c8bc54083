"""Registered callbacks for pipeline configs."""

from typing import Callable, Type

from spacy.language import Language
from spacy.util import registry


@registry.callbacks("spacy-jmt.torch_threads.v1")
def create_torch_threads(n_threads: int = 1) -> Callable[[Type[Language]], Type[Language]]:
    """Set the number of torch's intra-op threads when the pipeline is created, for use as
    `[nlp.before_creation]`.

    The network runs many small ops (one per LSTM time step); with several intra-op threads
    torch spends most of each op synchronising them, and on a 2-core machine that is already
    busy (a second process, `n_process=2`) it runs 100 times slower. One thread per process is
    the fast setting on small machines.

    n_threads (int): The number of threads; 0 leaves torch's default.
    RETURNS (Callable): The callback, which returns the Language class unchanged.
    """

    def set_threads(lang_cls: Type[Language]) -> Type[Language]:
        if n_threads > 0:
            import torch

            torch.set_num_threads(n_threads)
        return lang_cls

    return set_threads
