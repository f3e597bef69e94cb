"""SNRTRescaleCFG (MODEL): Lin et al.'s CFG rescale as a chainable post-CFG step."""
from __future__ import annotations

from comfy_api.latest import io

from ..errors import SNRToolkitError
from ..internals.model_sampling import is_flow_model
from ..samplers.guidance import in_sigma_window, rescale_cfg, rescale_cfg_x0
from .schema import advanced, schema


def rescale_post_cfg(phi: float, sigma_start: float, sigma_end: float, flow: bool):
    def post_cfg(args):
        sigma = args["sigma"]
        if not in_sigma_window(float(sigma.max()), sigma_start, sigma_end):
            return args["denoised"]
        x, guided, cond = args["input"], args["denoised"], args["cond_denoised"]
        if not flow:
            return rescale_cfg_x0(x, sigma, guided, cond, phi)
        # Flow models predict the velocity u = (x − x0)/σ; rescale there, as in v space for VP models.
        s = sigma.reshape(sigma.shape[:1] + (1,) * (x.ndim - 1))
        return x - s * rescale_cfg((x - guided) / s, (x - cond) / s, phi)
    return post_cfg


class SNRTRescaleCFG(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            search_aliases=["cfg rescale", "rescale cfg", "guidance rescale", "v-pred overexposure"],
            node_id="SNRTRescaleCFG",
            display_name="Rescale CFG",
            category="advanced/guidance",
            description=(
                "Lin et al. 2023 (arXiv 2305.08891): high CFG inflates the prediction's std and over-exposes ZTSNR / "
                "v-pred models; rescale the guided prediction to the conditional one's std (over all non-batch "
                "dims) and mix φ of it back. Computed in v space (velocity for flow models). Unlike ComfyUI's "
                "RescaleCFG it is a post-CFG step, so it chains: nodes before it in the graph (e.g. Skip Layer "
                "Guidance) act first, and it rescales their result."),
            inputs=[
                io.Model.Input("model", tooltip="Any model ComfyUI samples with CFG. Not mutated."),
                io.Float.Input("multiplier", default=0.7, min=0.0, max=1.0, step=0.01,
                               tooltip="φ: 0 = plain CFG, 1 = fully rescaled; Lin et al. use 0.7."),
                io.Float.Input("start_percent", **advanced(), default=0.0, min=0.0, max=1.0, step=0.001,
                               tooltip="Rescale from this point of the schedule (0 = the first step)."),
                io.Float.Input("end_percent", **advanced(), default=1.0, min=0.0, max=1.0, step=0.001,
                               tooltip="… up to this point (1 = the last step); above start_percent."),
            ],
            outputs=[io.Model.Output(tooltip="A clone with the rescale appended to its post-CFG steps.")],
        )

    @classmethod
    def execute(cls, model, multiplier, start_percent, end_percent) -> io.NodeOutput:
        if not start_percent < end_percent:
            raise SNRToolkitError(f"Rescale CFG: start_percent ({start_percent}) must be below end_percent "
                                  f"({end_percent}); the window would be empty.")
        model_sampling = model.get_model_object("model_sampling")
        sigma_start = model_sampling.percent_to_sigma(start_percent)
        sigma_end = model_sampling.percent_to_sigma(end_percent)
        patched = model.clone()
        patched.set_model_sampler_post_cfg_function(
            rescale_post_cfg(multiplier, sigma_start, sigma_end, is_flow_model(model_sampling)))
        return io.NodeOutput(patched)
