"""ComfyUI's own LoRA trainer on tiny real-architecture checkpoints, for the training tests, demo and benchmark.

Models are written as checkpoint files and loaded by ComfyUI's core CheckpointLoaderSimple (on 0.33 the
trainer's `clone(force_deepcopy=True)` rebuilds the model from its loader, so a hand-built ModelPatcher
cannot be trained). Import it before ComfyUI is up; what needs ComfyUI imports it when called. `train` calls TrainLoraNode with what the running host's node accepts (0.33 added inputs
and dropped the MODEL output); `Spy` records what the trainer feeds the network and the gradient it gets back.
"""
from __future__ import annotations

import inspect
from pathlib import Path

import torch


def node_output(result):
    """The outputs of a V3 node's execute (io.NodeOutput) or of a classic node (a tuple)."""
    return tuple(result.result) if hasattr(result, "result") else tuple(result)


def load_tiny_checkpoint(nodes, base: Path, family: str = "sdxl", name: str | None = None, seed: int = 0,
                         tensors: dict | None = None):
    """(MODEL, CLIP or None, VAE) of a tiny `family` checkpoint loaded by ComfyUI's CheckpointLoaderSimple."""
    from tools import tiny_checkpoints  # imports ComfyUI: only once a host runs
    tiny_checkpoints.register_detectable_configs()
    name = name or f"snrt_tiny_{family}_{seed}.safetensors"
    path = Path(base) / "models" / "checkpoints" / name
    if not path.is_file():
        tiny_checkpoints.write_detectable_checkpoint(
            path, tensors if tensors is not None else tiny_checkpoints.detectable_tensors(family, seed=seed))
    return nodes.CheckpointLoaderSimple().load_checkpoint(name)[:3]


def conditioning(family: str, clip=None, seed: int = 0):
    """Text conditioning: the tiny CLIP's encoding of an empty prompt (SDXL), or random tensors of the tiny SD 3.5
    MMDiT's shapes (4096-d tokens, pooled CLIP-L + CLIP-G)."""
    if clip is not None:
        return clip.encode_from_tokens_scheduled(clip.tokenize(""))
    from tools import tiny_checkpoints
    generator = torch.Generator().manual_seed(seed)
    pooled = tiny_checkpoints.SD3_MEDIUM_MMDIT["adm_in_channels"]
    return [[torch.randn(1, 16, 4096, generator=generator) * 0.1,
             {"pooled_output": torch.randn(1, pooled, generator=generator) * 0.1}]]


def trainer_inputs(nodes, **overrides) -> dict:
    """TrainLoraNode's inputs as lists (is_input_list), its defaults where this host has them; fp32 on the CPU."""
    import comfy.weight_adapter
    node = nodes.NODE_CLASS_MAPPINGS["TrainLoraNode"]
    accepted = set(inspect.signature(node.execute).parameters)
    values = dict(batch_size=1, grad_accumulation_steps=1, steps=4, learning_rate=1e-3, rank=4, optimizer="AdamW",
                  loss_function="MSE", seed=0, training_dtype="fp32", lora_dtype="fp32",
                  algorithm=next(iter(comfy.weight_adapter.adapter_maps)), gradient_checkpointing=False,
                  checkpoint_depth=1, offloading=False, existing_lora="[None]", quantized_backward=False,
                  bucket_mode=False, bypass_mode=False)
    values.update(overrides)
    unknown = set(overrides) - accepted
    if unknown:
        raise TypeError(f"TrainLoraNode on this host takes no {sorted(unknown)}")
    return {k: [v] for k, v in values.items() if k in accepted}


def train(nodes, model, latents: list[torch.Tensor], positive, global_seed: int = 0, **overrides):
    """(LoRA state dict, logged losses) of TrainLoraNode on `latents` (one LATENT per sample), the global torch
    RNG seeded first (the trainer draws σ and batches from it)."""
    inputs = trainer_inputs(nodes, **overrides)
    torch.manual_seed(global_seed)
    with torch.inference_mode():  # as ComfyUI's executor runs nodes; the trainer lifts it itself
        outputs = node_output(nodes.NODE_CLASS_MAPPINGS["TrainLoraNode"].execute(
            model=[model], latents=[{"samples": latent[None] if latent.ndim == 3 else latent} for latent in latents],
            positive=[positive], **inputs))
    lora, loss_map = next(o for o in outputs if isinstance(o, dict) and "loss" not in o), \
        next(o for o in outputs if isinstance(o, dict) and "loss" in o)
    return lora, list(loss_map["loss"])


def objective_defaults(nodes) -> dict:
    """SNRTTrainingObjective's inputs at their defaults."""
    schema = nodes.NODE_CLASS_MAPPINGS["SNRTTrainingObjective"].define_schema()
    return {i.id: i.default for i in schema.inputs if i.id != "model"}


def with_objective(nodes, model, **settings):
    """The model through SNRTTrainingObjective with these inputs (the rest at their defaults)."""
    values = objective_defaults(nodes)
    unknown = set(settings) - set(values)
    if unknown:
        raise TypeError(f"SNRTTrainingObjective has no inputs {sorted(unknown)}")
    values.update(settings)
    return node_output(nodes.NODE_CLASS_MAPPINGS["SNRTTrainingObjective"].execute(model=model, **values))[0]


class Spy:
    """A UNet function wrapper (ComfyUI's model_function_wrapper) that records every training forward: the noisy
    input, σ and the network's x₀ prediction, and through a tensor hook the gradient the loss sends back to it."""

    def __init__(self):
        self.calls: list[dict] = []

    def wrapper(self):
        """The wrapper as a plain function: ModelPatcher.clone deep-copies model_options (0.3.75), which leaves
        functions as they are but would copy an object, and its records with it."""
        calls = self.calls

        def record(apply_model, args):
            out = apply_model(args["input"], args["timestep"], **args["c"])
            entry = {"x": args["input"].detach().clone(), "sigma": args["timestep"].detach().clone(),
                     "out": out.detach().clone(), "grad": None}
            if out.requires_grad:
                def keep(grad, entry=entry):
                    entry["grad"] = grad.detach().clone()
                out.register_hook(keep)
            calls.append(entry)
            return out
        return record

    def install(self, model):
        """A clone of `model` with the spy as its UNet wrapper (before any pack node clones it)."""
        spied = model.clone()
        spied.set_model_unet_function_wrapper(self.wrapper())
        return spied

    def sigmas(self, batch_size: int) -> torch.Tensor:
        """The σ of every sample the trainer drew. Each training forward holds the batch once per conditioning entry
        (the trainer gives every sample its own, and ComfyUI runs each entry over the whole batch): take one copy."""
        return torch.cat([c["sigma"].reshape(-1)[:batch_size].double() for c in self.calls])
