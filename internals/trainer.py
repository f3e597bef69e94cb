"""Door to ComfyUI's LoRA trainer (comfy_extras/nodes_train.py, TrainLoraNode → TrainSampler): where a training
objective can act without a copy of the trainer.

Assumptions (checked by `contract_problems` on the running ComfyUI, and call by call while a run trains):
- TrainLoraNode samples with a `TrainSampler` (a comfy.samplers.Sampler) through the guider's `sample`, which
  runs OUTER_SAMPLE wrappers with the sampler as their third argument;
- per sample the trainer draws σ = model_sampling.percent_to_sigma(p), p from torch.rand;
- `TrainSampler.fwd_bwd` noises as xₜ = model_sampling.noise_scaling(σ, noise, x₀, False), takes its target as
  noise_scaling(0, 0, x₀, False), calls the model with (xₜ, σ) and computes `self.loss_fn(x̂₀, x₀)`, a torch
  loss with reduction "mean"; `loss_fn` is the criterion given to TrainSampler's constructor.

While a run trains (`TrainingRun`), every σ the trainer noises with must be one it drew through
percent_to_sigma, every loss must pair with the noising just before it and nothing may be left unpaired; a
trainer that works otherwise stops the run with an error naming what changed, so an objective is never
silently trained differently. Outside the trainer (any sampler but TrainSampler) nothing here acts: the
model samples exactly as its input.
"""
from __future__ import annotations

import contextvars
import copy
import functools
import importlib
import inspect
import sys
import uuid
from dataclasses import dataclass, field

import torch

import comfy.patcher_extension
import comfy.samplers

from ..errors import SNRToolkitError
from ..samplers.loss_weighting import x0_loss_weight
from ..samplers.timestep_sampling import TimestepDensity
from ..samplers.training_noise import perturbation, perturbation_target_gain, training_noise
from ..schedules.flow_shift import shifted_time

TRAINER_MODULE = "comfy_extras.nodes_train"
WRAPPER_KEY = "snr_toolkit_training_objective"
#: The run a TrainSampler is training right now (set only inside TrainSampler.sample).
_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("snr_toolkit_training_run", default=None)
WHO = "Training Objective"


def trainer_sampler_class():
    """ComfyUI's TrainSampler class as its node loader loaded it, or None when this ComfyUI has no trainer.

    ComfyUI loads comfy_extras by file path (its sys.modules name is the path), so a plain import of
    comfy_extras.nodes_train would make a second, different class: take the module of the registered node."""
    import nodes
    train_node = nodes.NODE_CLASS_MAPPINGS.get("TrainLoraNode")
    module = sys.modules.get(getattr(train_node, "__module__", ""), None)
    if module is None:
        try:
            module = importlib.import_module(TRAINER_MODULE)
        except ImportError:
            return None
    return getattr(module, "TrainSampler", None)


def is_trainer_sampler(sampler) -> bool:
    cls = trainer_sampler_class()
    return cls is not None and isinstance(sampler, cls)


@dataclass(eq=False)
class Objective:
    """What the node set; every field at its default leaves the trainer's own objective."""
    parameterisation: str                       # "eps", "v" or "flow": the target the weights refer to
    weighting: str = "trainer"
    gamma: float = 5.0
    noise_scale: float = 1.0                    # a flow model's noise scale s (1 for SD3, Flux)
    density: TimestepDensity = field(default_factory=TimestepDensity)
    shift_alpha: float = 1.0                    # the resolution shift on the noise time (flow models)
    offset: float = 0.0
    adaptive_offset: float = 0.0
    pyramid_iterations: int = 0
    pyramid_discount: float = 0.3
    ip_gamma: float = 0.0
    key: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def computes_its_own_loss(self) -> bool:
        return self.weighting != "trainer" or bool(self.ip_gamma)

    @property
    def changes_noise(self) -> bool:
        return bool(self.offset or self.pyramid_iterations)

    def percent(self, p: float) -> float:
        """The percent to ask model_sampling for, for the trainer's draw p: 1 − t, t the density's noise time
        after the resolution shift; p itself (bit for bit) when the density is the trainer's own."""
        if self.density.is_trainers_own and self.shift_alpha == 1.0:
            return p
        t = self.density(p)
        return 1.0 - (shifted_time(t, self.shift_alpha) if self.shift_alpha != 1.0 else t)


def trainer_changed(what: str) -> SNRToolkitError:
    from . import comfyui_version
    return SNRToolkitError(
        f"{WHO}: ComfyUI's trainer ({comfyui_version()}) no longer works as the node relies on: {what}. The run "
        "stops rather than train a different objective than the one set; SNR Toolkit is tested on ComfyUI 0.3.75 "
        "to 0.33.0: update the pack, or report this with your ComfyUI version.")


@dataclass
class _Noised:
    """One xₜ the trainer built, waiting for its loss."""
    sigma: torch.Tensor
    target: torch.Tensor | None = None        # the trainer's x₀ (its second noise_scaling call)
    target_shift: torch.Tensor | None = None  # input perturbation: how the model's own target moves, x₀ units


class TrainingRun:
    """One TrainLoraNode run under an Objective: the hooks model_sampling and the loss call, with their checks."""

    def __init__(self, objective: Objective, sampler):
        self.objective = objective
        self.trainer_loss = sampler.loss_fn
        if getattr(self.trainer_loss, "reduction", None) != "mean":
            raise trainer_changed(f"its loss function {type(self.trainer_loss).__name__} does not average "
                                  "(reduction 'mean') over the batch")
        self.elementwise = copy.copy(self.trainer_loss)
        self.elementwise.reduction = "none"
        self.seed = int(getattr(sampler, "seed", 0))
        self.drawn: list[float] = []
        self.noised: _Noised | None = None
        self.calls = 0
        self.sampler = copy.copy(sampler)  # the trainer's own object stays as it was
        self.sampler.loss_fn = self.loss
        self.sampler.sample = functools.partial(self._sample, type(sampler).sample.__get__(self.sampler))

    def _sample(self, sample, model_wrap, *args, **kwargs):
        sampling = getattr(getattr(model_wrap, "inner_model", None), "model_sampling", None)
        if getattr(getattr(sampling, "snrt_objective", None), "key", None) != self.objective.key:
            raise SNRToolkitError(
                f"{WHO}: the model the trainer uses no longer carries this node's model_sampling: a node between "
                "Training Objective and Train LoRA replaced it (V-Prediction / ZTSNR, ModelSamplingDiscrete, "
                "…). Put Training Objective last, right before Train LoRA; it has its own prediction and ZTSNR "
                "inputs for training.")
        token = _ACTIVE.set(self)
        try:
            result = sample(model_wrap, *args, **kwargs)
        finally:
            _ACTIVE.reset(token)
        if self.noised is not None or self.drawn:
            raise trainer_changed("it drew σ or built a noisy input that no loss used")
        return result

    # --- model_sampling, while the trainer trains -----------------------------------------------

    def percent_to_sigma(self, base, percent: float) -> float:
        sigma = float(base.percent_to_sigma(self.objective.percent(percent)))
        self.drawn.append(sigma)
        return sigma

    def noise_scaling(self, base, sigma, noise, latent_image, max_denoise):
        sigma_t = torch.as_tensor(sigma)
        if not torch.any(sigma_t) and not torch.any(noise):  # the trainer's target: noise_scaling(0, 0, x₀)
            target = base.noise_scaling(sigma, noise, latent_image, max_denoise)
            if self.noised is None or self.noised.target is not None:
                raise trainer_changed("it took its x₀ target without noising an input first")
            self.noised.target = target
            return target
        if self.noised is not None:
            raise trainer_changed("it built a second noisy input before computing the loss of the first "
                                  "(its loss no longer goes through TrainSampler.loss_fn)")
        values = sigma_t.detach().float().reshape(-1).cpu()
        expected = torch.tensor(self.drawn, dtype=torch.float32)
        if values.shape != expected.shape or not torch.equal(values, expected):
            raise trainer_changed("the σ it noises with are not the ones it drew through "
                                  "model_sampling.percent_to_sigma")
        self.drawn = []
        call_seed = (self.seed * 1_000_003 + self.calls * 7_919 + 0x7A1) % 2**63
        self.calls += 1
        objective = self.objective
        if objective.changes_noise:
            noise = training_noise(noise, latent_image, call_seed, objective.offset, objective.adaptive_offset,
                                   objective.pyramid_iterations, objective.pyramid_discount).to(noise.dtype)
        self.noised = _Noised(sigma=sigma_t.detach().reshape(-1).double().cpu())
        if objective.ip_gamma:
            push = perturbation(noise.shape, objective.ip_gamma, call_seed + 1, noise.device)
            gain = perturbation_target_gain(self.noised.sigma, objective.parameterisation, objective.noise_scale)
            self.noised.target_shift = gain.float().to(push.device).reshape((-1,) + (1,) * (push.ndim - 1)) * push
            noise = (noise.float() + push).to(noise.dtype)
        return base.noise_scaling(sigma, noise, latent_image, max_denoise)

    # --- the loss ----------------------------------------------------------------------------------

    def loss(self, prediction, target):
        noised, self.noised = self.noised, None
        if noised is None or noised.target is None:
            raise trainer_changed("its loss was called without the noising and x₀ target before it")
        if not torch.equal(target.detach().float(), noised.target.detach().float()):
            raise trainer_changed("the target its loss compares with is not the x₀ it noised")
        objective = self.objective
        if not objective.computes_its_own_loss:
            return self.trainer_loss(prediction, target)
        if prediction.shape != target.shape or prediction.shape[0] != noised.sigma.numel():
            raise trainer_changed(f"its prediction {tuple(prediction.shape)} does not match the {noised.sigma.numel()} "
                                  f"σ and the target {tuple(target.shape)} it noised")
        goal = target.float()
        if noised.target_shift is not None:
            goal = goal + noised.target_shift.to(goal.device)
        weights = x0_loss_weight(noised.sigma, objective.parameterisation, objective.weighting, objective.gamma,
                                 objective.noise_scale)
        weights = weights.float().to(prediction.device).reshape((-1,) + (1,) * (prediction.ndim - 1))
        return (weights * self.elementwise(prediction.float(), goal)).mean()


def active_run(objective_key: str) -> TrainingRun | None:
    run = _ACTIVE.get()
    return run if run is not None and run.objective.key == objective_key else None


def outer_sample_wrapper(objective: Objective):
    """OUTER_SAMPLE wrapper: a TrainSampler gets the objective's run; any other sampler passes untouched."""
    def wrapper(executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        if is_trainer_sampler(sampler):
            sampler = TrainingRun(objective, sampler).sampler
        return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)
    return wrapper


# --- model_sampling that changes only while the trainer trains --------------------------------------

class TrainingOnlySampling:
    """Mixin over a model_sampling class: inside a TrainingRun of `snrt_objective` the trainer's draws and
    noising go through the run (and, where `snrt_training_sampling` is set, the model is trained as that
    prediction type and schedule); everywhere else every method is the input's own."""
    snrt_objective: Objective

    def _snrt_training(self):
        # A submodule when set (torch keeps it in _modules), so read it through getattr.
        return getattr(self, "snrt_training_sampling", None)

    def _snrt_base(self):
        run = active_run(self.snrt_objective.key)
        if run is None:
            return None, None
        training = self._snrt_training()
        return run, (training if training is not None else super(TrainingOnlySampling, self))

    def percent_to_sigma(self, percent):
        run, base = self._snrt_base()
        return super().percent_to_sigma(percent) if run is None else run.percent_to_sigma(base, percent)

    def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
        run, base = self._snrt_base()
        if run is None:
            return super().noise_scaling(sigma, noise, latent_image, max_denoise)
        return run.noise_scaling(base, sigma, noise, latent_image, max_denoise)

    def _snrt_own(self):
        """The sampling object the model is trained as right now: the training one inside a run, else this one's."""
        training = self._snrt_training()
        if training is not None and active_run(self.snrt_objective.key) is not None:
            return training
        return super(TrainingOnlySampling, self)

    def calculate_input(self, sigma, noise):
        return self._snrt_own().calculate_input(sigma, noise)

    def calculate_denoised(self, sigma, model_output, model_input):
        return self._snrt_own().calculate_denoised(sigma, model_output, model_input)

    def timestep(self, sigma):
        return self._snrt_own().timestep(sigma)

    def sigma(self, timestep):
        return self._snrt_own().sigma(timestep)


_CLASSES: dict[type, type] = {}


def training_only(model_sampling, objective: Objective, training_sampling=None):
    """A copy of `model_sampling` that follows `objective` inside the trainer only (the input is untouched)."""
    if isinstance(model_sampling, TrainingOnlySampling):
        raise SNRToolkitError(f"{WHO}: this model already carries a Training Objective; use one node and set "
                              "every option there.")
    patched = copy.deepcopy(model_sampling)
    base = type(model_sampling)
    patched.__class__ = _CLASSES.setdefault(base, type(f"SNRTTrainingOnly{base.__name__}",
                                                        (TrainingOnlySampling, base), {}))
    patched.snrt_objective = objective
    if training_sampling is not None:
        patched.snrt_training_sampling = training_sampling  # a submodule: it moves with the model
    return patched


def add_to(model, objective: Objective, training_sampling=None):
    """A clone of `model` training with `objective` (model_sampling patch + OUTER_SAMPLE wrapper)."""
    patched = model.clone()
    patched.add_object_patch("model_sampling", training_only(model.get_model_object("model_sampling"), objective,
                                                             training_sampling))
    patched.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY)
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY,
                                 outer_sample_wrapper(objective))
    return patched


def _source(function) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def contract_problems() -> list[str]:
    found = []
    if not hasattr(comfy.patcher_extension.WrappersMP, "OUTER_SAMPLE"):
        found.append("comfy.patcher_extension.WrappersMP.OUTER_SAMPLE is gone")
    if "WrappersMP.OUTER_SAMPLE" not in _source(comfy.samplers.CFGGuider.sample):
        found.append("CFGGuider.sample no longer runs OUTER_SAMPLE wrappers around outer_sample")
    cls = trainer_sampler_class()
    if cls is None:
        return found + [f"{TRAINER_MODULE}.TrainSampler is gone (ComfyUI's LoRA trainer)"]
    if not issubclass(cls, comfy.samplers.Sampler):
        found.append("TrainSampler is no longer a comfy.samplers.Sampler")
    parameters = list(inspect.signature(cls.__init__).parameters)
    if parameters[1:2] != ["loss_fn"] or "self.loss_fn = loss_fn" not in _source(cls.__init__):
        found.append("TrainSampler no longer takes its loss function as `loss_fn`")
    forward_backward = getattr(cls, "fwd_bwd", None)
    body = _source(forward_backward) if forward_backward else ""
    if "self.loss_fn(" not in body:
        found.append("TrainSampler.fwd_bwd no longer computes its loss with self.loss_fn")
    if body.count(".noise_scaling(") != 2 or "torch.zeros_like(batch_sigmas)" not in body:
        found.append("TrainSampler.fwd_bwd no longer noises with model_sampling.noise_scaling(σ, noise, x₀) and "
                     "takes x₀ as noise_scaling(0, 0, x₀)")
    whole = _source(cls)
    if "percent_to_sigma(" not in whole or "torch.rand(" not in whole:
        found.append("TrainSampler no longer draws σ as model_sampling.percent_to_sigma(torch.rand)")
    return found
