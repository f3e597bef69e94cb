"""SNR Toolkit: Zero Terminal SNR, resolution-scaled σ_max, v-prediction, Skip Layer Guidance and
pyramid noise for ComfyUI. Registered through `comfy_entrypoint` only; importable without ComfyUI
(the pure maths lives in `schedules/` and `samplers/`)."""


async def comfy_entrypoint():
    """ComfyUI's V3 entry point: register the ztsnr_* KSampler schedulers, return the extension."""
    from .internals import warn_on_load
    from .nodes import SNRToolkitExtension, register_ksampler_schedulers

    warn_on_load()
    register_ksampler_schedulers()
    return SNRToolkitExtension()
