"""The update rules, each matching its torch.optim counterpart step for step. Every rule adds
weight_decay·p (L2, as torch does) and l1·sign(p) to the gradient, then runs one fused kernel."""

from __future__ import annotations

import math
from typing import Any

from gpunet.checks import check, is_real
from gpunet.kernels import optim as kernels
from gpunet.optimizers.base import Optimizer
from gpunet.optimizers.schedules import Schedule


class SGD(Optimizer):
    """SGD with optional momentum and Nesterov momentum (torch.optim.SGD with dampening=0)."""

    def __init__(self, lr: float | Schedule = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, l1: float = 0.0) -> None:
        super().__init__(lr, weight_decay, l1)
        check(is_real(momentum) and 0 <= momentum < 1, "SGD", "momentum", "in [0, 1)", momentum)
        check(not nesterov or momentum > 0, "SGD", "nesterov",
              "False when momentum is 0 (Nesterov needs momentum)", nesterov)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.slots = ("momentum_buffer",) if self.momentum else ()

    def _update(self, p: Any, g: Any, state: dict[str, Any], scratch: Any) -> None:
        if self.momentum:
            kernels.momentum_update(p, g, state["momentum_buffer"], self.lr, self.momentum,
                                    self.nesterov, self.weight_decay, self.l1, scratch)
        else:
            kernels.sgd_update(p, g, self.lr, self.weight_decay, self.l1, scratch)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adagrad(Optimizer):
    """Adagrad: per-element steps shrink with the summed squared gradients (accumulator starts
    at 0, no lr decay, as torch.optim.Adagrad's defaults)."""

    slots = ("sum",)

    def __init__(self, lr: float | Schedule = 0.01, eps: float = 1e-10,
                 weight_decay: float = 0.0, l1: float = 0.0) -> None:
        super().__init__(lr, weight_decay, l1)
        check(is_real(eps) and eps > 0, "Adagrad", "eps", "a number > 0", eps)
        self.eps = float(eps)

    def _update(self, p: Any, g: Any, state: dict[str, Any], scratch: Any) -> None:
        kernels.adagrad_update(p, g, state["sum"], self.lr, self.eps, self.weight_decay,
                               self.l1, scratch)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "eps": self.eps}


class RMSprop(Optimizer):
    """RMSprop, non-centered and without momentum; `rho` is torch.optim.RMSprop's `alpha`."""

    slots = ("square_avg",)

    def __init__(self, lr: float | Schedule = 0.001, rho: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, l1: float = 0.0) -> None:
        super().__init__(lr, weight_decay, l1)
        check(is_real(rho) and 0 <= rho < 1, "RMSprop", "rho", "in [0, 1)", rho)
        check(is_real(eps) and eps > 0, "RMSprop", "eps", "a number > 0", eps)
        self.rho, self.eps = float(rho), float(eps)

    def _update(self, p: Any, g: Any, state: dict[str, Any], scratch: Any) -> None:
        kernels.rmsprop_update(p, g, state["square_avg"], self.lr, self.rho, self.eps,
                               self.weight_decay, self.l1, scratch)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "eps": self.eps}


class Adam(Optimizer):
    """Adam with bias correction; eps is added after √v̂ (torch.optim.Adam, amsgrad=False)."""

    slots = ("exp_avg", "exp_avg_sq")

    def __init__(self, lr: float | Schedule = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0, l1: float = 0.0) -> None:
        super().__init__(lr, weight_decay, l1)
        check(is_real(beta1) and 0 <= beta1 < 1, "Adam", "beta1", "in [0, 1)", beta1)
        check(is_real(beta2) and 0 <= beta2 < 1, "Adam", "beta2", "in [0, 1)", beta2)
        check(is_real(eps) and eps > 0, "Adam", "eps", "a number > 0", eps)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def _update(self, p: Any, g: Any, state: dict[str, Any], scratch: Any) -> None:
        t = self.iterations
        step_size = self.lr / (1.0 - self.beta1 ** t)
        bc2_sqrt = math.sqrt(1.0 - self.beta2 ** t)
        kernels.adam_update(p, g, state["exp_avg"], state["exp_avg_sq"], step_size, self.beta1,
                            self.beta2, self.eps, bc2_sqrt, self.weight_decay, self.l1, scratch)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta1": self.beta1, "beta2": self.beta2,
                "eps": self.eps}
