"""PyTorch flavor: TorchScript modules saved with ``torch.jit.save``, loaded on CPU.

A ``torch.jit.ScriptModule`` is saved as is; a plain ``torch.nn.Module`` is traced with the input
example (``torch.jit.trace``), so register it with ``input_example=``. TorchScript files hold
the module's graph and weights, not pickled Python objects. ``torch`` is imported only when a torch
model is registered or loaded (install ``fti[torch]``).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.errors import ValidationError
from fti.registry.flavors.base import library_loaded, reject_options, require

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MODEL_FILE = "model.pt"


class PyTorchFlavor:
    """TorchScript modules (and ``nn.Module`` objects traced with the input example)."""

    name = "pytorch"

    def matches(self, model: object) -> bool:
        if not library_loaded("torch"):
            return False
        import torch

        return isinstance(model, torch.nn.Module)

    def save(self, model: Any, directory: Path, *, example: Any = None, **options: Any) -> dict[str, Any]:
        reject_options(self.name, options)
        torch = _torch()
        script = model
        if not isinstance(model, torch.jit.ScriptModule):
            if example is None:
                raise ValidationError(
                    "a torch.nn.Module is saved as TorchScript by tracing it: pass input_example= "
                    "(a few rows of model input) or register torch.jit.script(model)"
                )
            model.eval()
            with torch.no_grad(), _quiet():
                script = torch.jit.trace(model, _tensor(example))
        with _quiet():
            torch.jit.save(script, str(directory / MODEL_FILE))
        return {"file": MODEL_FILE, "torch_version": str(torch.__version__)}

    def load(self, directory: Path, options: dict[str, Any]) -> Any:
        torch = _torch()
        with _quiet():
            module = torch.jit.load(str(directory / options.get("file", MODEL_FILE)), map_location="cpu")
        module.eval()
        return module

    def predict(self, model: Any, X: np.ndarray | pd.DataFrame) -> dict[str, np.ndarray]:
        torch = _torch()
        model.eval()
        with torch.no_grad():
            result = model(_tensor(X))
        if isinstance(result, tuple | list):
            result = result[0]
        array = result.detach().cpu().numpy()
        if array.ndim == 2 and array.shape[1] == 1:
            array = array.reshape(-1)
        return {"predict": array}


def _torch() -> Any:
    return require("torch", "torch")


def _tensor(X: Any) -> Any:
    import numpy as np

    torch = _torch()
    matrix = X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X)
    if matrix.ndim != 2:
        raise ValidationError(f"model input must be 2-D (rows x features), got shape {matrix.shape}")
    try:
        values = np.ascontiguousarray(matrix, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"PyTorch models take numeric input; could not convert it to float32: {exc}"
        ) from exc
    return torch.from_numpy(values)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """torch.jit.* warn that TorchScript is deprecated; it is still the safe format we store."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield
