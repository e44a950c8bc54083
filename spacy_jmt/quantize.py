"""Int8 inference on the CPU: the component's `quantize` setting.

Training always runs in float32. At inference, with `quantize = true`:

- the torch network runs as a copy whose LSTMs and linear layers hold int8 weights (torch's
  dynamic quantization: activations are quantized on the fly, per batch);
- the tok2vec's maxout layers (Thinc, whose float32 matrix product runs at a quarter of
  torch's speed here) compute their product with the same int8 linear layers.

Either copy is made again whenever its weights changed (an update, loading, averages), so a
pipeline evaluated during training is evaluated as it will run. On a machine for which torch
has no quantized engine, everything runs in float32.
"""

import warnings
from typing import Any, Callable, Optional, Tuple

import numpy
from thinc.api import Model
from thinc.layers.maxout import forward as maxout_forward
from thinc.types import Floats2d


def quantized_engine() -> Optional[str]:
    """RETURNS (Optional[str]): The engine torch quantizes with on this machine (x86, fbgemm
    or qnnpack), or None if it has none."""
    import torch

    engine = torch.backends.quantized.engine
    supported = torch.backends.quantized.supported_engines
    has_api = hasattr(getattr(torch, "ao", None), "quantization")
    return engine if has_api and engine != "none" and engine in supported else None


def quantize_network(network: Any) -> Any:
    """RETURNS (Module): An inference copy of a torch module with int8 weights in its LSTMs
    and linear layers, in eval mode; the module itself is unchanged. A module that reads some
    of its layers' weights itself names them in `float_modules` (e.g. "mlp.0"): they stay
    float32."""
    import torch
    from torch import nn

    keep = {
        f"{name}.{sub}" if name else sub
        for name, module in network.named_modules()
        for sub in getattr(module, "float_modules", ())
    }
    names = {
        name
        for name, module in network.named_modules()
        if isinstance(module, (nn.LSTM, nn.Linear)) and name not in keep
    }
    with warnings.catch_warnings():  # torch.ao announces its move to torchao on every call
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(network, names, dtype=torch.qint8)
    return quantized.eval()


def weights_key(params: Any) -> Tuple[Tuple[int, int], ...]:
    """RETURNS: What identifies the current values of torch parameters: their storage and
    in-place version (loading and averages copy into them, which bumps the version; a
    training step may reuse the storage, so training drops the copy itself)."""
    return tuple((p.data_ptr(), p._version) for p in params)


def quantize_maxouts(tok2vec: Model, on: bool) -> None:
    """Let the tok2vec's maxout layers predict through int8 linear layers (on), or through
    Thinc's float32 forward again (off). Training always uses Thinc's forward.

    tok2vec (Model): A Thinc model, e.g. spaCy's Tok2Vec.v2.
    on (bool): Whether to quantize.
    """
    for node in tok2vec.walk():
        if node.name == "maxout":
            node._func = Int8MaxoutForward() if on else maxout_forward


class Int8MaxoutForward:
    """The forward function of one Thinc maxout layer that predicts through an int8 copy of
    its weights (and trains through Thinc's forward)."""

    def __init__(self) -> None:
        # (W, b, int8 layer): the arrays are kept, so that a new W (loading, averages) is
        # never mistaken for the old one.
        self.copy: Optional[Tuple[Any, Any, Any]] = None

    def __getstate__(self) -> dict:
        return {"copy": None}  # pickled pipelines (n_process) make their own copy

    def __call__(self, model: Model, X: Floats2d, is_train: bool) -> Tuple[Floats2d, Callable]:
        if is_train or model.ops.xp is not numpy or quantized_engine() is None:
            self.copy = None  # the weights change at every training step
            return maxout_forward(model, X, is_train)
        import torch

        nO, nP, nI = model.get_dim("nO"), model.get_dim("nP"), model.get_dim("nI")
        W, b = model.get_param("W"), model.get_param("b")
        if self.copy is None or self.copy[0] is not W or self.copy[1] is not b:
            linear = torch.nn.Linear(nI, nO * nP)
            linear.weight.data = torch.from_numpy(model.ops.reshape2f(W, nO * nP, nI).copy())
            linear.bias.data = torch.from_numpy(model.ops.reshape1f(b, nO * nP).copy())
            self.copy = (W, b, quantize_network(torch.nn.Sequential(linear)))
        with torch.no_grad():
            Y = self.copy[2](torch.from_numpy(model.ops.xp.ascontiguousarray(X))).numpy()
        best, _ = model.ops.maxout(model.ops.reshape3f(Y, Y.shape[0], nO, nP))

        def backprop(d_best: Floats2d) -> Floats2d:
            raise ValueError("An int8 maxout layer only predicts; training runs Thinc's forward")

        return best, backprop
