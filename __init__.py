"""SNR Toolkit: Zero Terminal SNR, resolution-scaled σ_max, v-prediction, Skip Layer Guidance and
pyramid noise for ComfyUI. Registered through `comfy_entrypoint` only; importable without ComfyUI
(the pure maths lives in `schedules/` and `samplers/`)."""

#: The frontend files ComfyUI serves at /extensions/snr_toolkit/: the node help pages under docs/
#: (NodeId.md, NodeId/<locale>.md), which the node documentation panel shows.
WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    """ComfyUI's V3 entry point: register the ztsnr_* KSampler schedulers, return the extension."""
    from .internals import warn_on_load
    from .nodes import SNRToolkitExtension, register_ksampler_schedulers

    warn_on_load()
    register_ksampler_schedulers()
    return SNRToolkitExtension()
