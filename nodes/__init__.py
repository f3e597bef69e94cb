"""ComfyUI V3 glue: the extension that lists the pack's nodes and registers its schedulers."""
from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from .aspect_bucket import SNRTAspectBucket
from .checkpoint_loader import SNRTCheckpointLoader
from .preview import SNRTPreviewNoise, SNRTPreviewSigmas
from .pyramid_noise import SNRTPyramidLatent, SNRTPyramidNoise, SNRTPyramidNoiseSampler
from .rescale_cfg import SNRTRescaleCFG
from .scheduler import SNRTScheduler, register_ksampler_schedulers
from .sigma_max_scale import SNRTSigmaMaxScale
from .skip_layer_guidance import SNRTSkipLayerGuidance
from .training_objective import SNRTTrainingObjective
from .v_prediction import SNRTVPrediction

NODES: list[type[io.ComfyNode]] = [
    SNRTScheduler, SNRTSigmaMaxScale, SNRTVPrediction, SNRTSkipLayerGuidance, SNRTRescaleCFG,
    SNRTPyramidNoise, SNRTPyramidNoiseSampler, SNRTPyramidLatent, SNRTAspectBucket, SNRTPreviewSigmas,
    SNRTPreviewNoise, SNRTCheckpointLoader, SNRTTrainingObjective,
]


class SNRToolkitExtension(ComfyExtension):
    async def on_load(self) -> None:
        # ComfyUI 0.3.75 never calls on_load (comfy_entrypoint registers); newer hosts do. Idempotent.
        register_ksampler_schedulers()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)
