"""An Adam optimizer with learning-rate scales per parameter name, so that a pretrained
transformer can be fine-tuned gently while the task layers above it learn from scratch in
the same update (Thinc's optimizers have one rate for every parameter)."""

from typing import Dict, Tuple

from thinc.api import Optimizer, registry
from thinc.types import FloatsXd


class ScaledOptimizer(Optimizer):
    """A Thinc Optimizer whose rate is scaled for parameters whose name starts with a prefix.

    lr_scales (Dict[str, float]): Name prefix -> factor on the learning rate (the first
        matching prefix counts). Hugging Face models wrapped by spacy-transformers name
        theirs "embeddings.", "encoder.", "pooler."; the jmt network's start with "levels."
        or "heads.".
    """

    def __init__(self, *args, lr_scales: Dict[str, float], **kwargs):
        super().__init__(*args, **kwargs)
        self.lr_scales = dict(lr_scales)

    def __call__(
        self,
        key: Tuple[int, str],
        weights: FloatsXd,
        gradient: FloatsXd,
        *,
        lr_scale: float = 1.0,
    ):
        name = key[1]
        for prefix, scale in self.lr_scales.items():
            if name.startswith(prefix):
                lr_scale *= scale
                break
        return super().__call__(key, weights, gradient, lr_scale=lr_scale)


@registry.optimizers("spacy-jmt.Adam.v1")
def create_scaled_adam(
    learn_rate: float = 0.001,
    *,
    lr_scales: Dict[str, float] = {},  # noqa: B006 (a config default, never mutated)
    L2: float = 0.0,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-08,
    grad_clip: float = 1.0,
    L2_is_weight_decay: bool = True,
    use_averages: bool = True,
) -> Optimizer:
    """Thinc's Adam.v1 with learning-rate scales per parameter-name prefix.

    learn_rate (float): The base learning rate (or a schedule).
    lr_scales (Dict[str, float]): Name prefix -> factor, e.g. {"embeddings.": 0.05,
        "encoder.": 0.05} to fine-tune a transformer at 1/20 of the rate of the task layers.
    The other arguments are those of Adam.v1.
    RETURNS (Optimizer): The optimizer.
    """
    return ScaledOptimizer(
        learn_rate,
        lr_scales=lr_scales,
        L2=L2,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        grad_clip=grad_clip,
        L2_is_weight_decay=L2_is_weight_decay,
        use_averages=use_averages,
        use_radam=False,
    )
