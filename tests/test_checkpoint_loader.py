"""SNRTCheckpointLoader on tiny checkpoint files that ComfyUI's own loader detects (the fixture pack registers
configs for the toy widths): every metadata variant configures the model as documented, the weights equal
CheckpointLoaderSimple's, and flow models and pickle files come back as loaded."""
import logging

import pytest
import torch

from snr_toolkit.schedules import ztsnr

PLAIN_SIGMA_MAX = 14.614642
COMFYUI_TERMINAL = ztsnr.COMFYUI_TERMINAL_SIGMA


@pytest.fixture(scope="module")
def files(comfy_host):
    """name → (markers, metadata) of the variants, written into the in-process host's checkpoints folder."""
    from tools import tiny_checkpoints
    folder = comfy_host.base / "models" / "checkpoints"
    sdxl = tiny_checkpoints.detectable_tensors("sdxl", seed=3, text_encoders=False)
    variants = {
        "none": ((), {}),
        "keys_vpred": (("v_pred",), {}),
        "keys_vpred_ztsnr": (("v_pred", "ztsnr"), {}),
        "comfy_predict_key": ((), {"modelspec.predict_key": "v"}),
        "modelspec_v_kohya_ztsnr": ((), {"modelspec.prediction_type": "v", "ss_zero_terminal_snr": "True"}),
        "ss_v_parameterization": ((), {"ss_v_parameterization": "true"}),
        "key_vs_metadata": (("v_pred",), {"modelspec.prediction_type": "epsilon"}),
        "ztsnr_key_only": (("ztsnr",), {}),
    }
    for name, (markers, metadata) in variants.items():
        tiny_checkpoints.write_detectable_checkpoint(folder / f"{name}.safetensors", sdxl, markers, metadata)
    full = tiny_checkpoints.detectable_tensors("sdxl", seed=4, text_encoders=True)
    tiny_checkpoints.write_detectable_checkpoint(folder / "full_keyless_vpred.safetensors", full, (),
                                                 {"modelspec.predict_key": "v", "ss_zero_terminal_snr": "True"})
    tiny_checkpoints.write_detectable_checkpoint(folder / "sd35.safetensors", tiny_checkpoints.detectable_tensors(
        "sd3", seed=5), (), {"modelspec.prediction_type": "epsilon"})  # what kohya writes on SD3 files
    torch.save({**sdxl, "v_pred": torch.zeros(0)}, folder / "pickled.ckpt")
    return variants


def load(comfy_host, name):
    return comfy_host.node("SNRTCheckpointLoader").execute(name)


def core(comfy_host, name):
    return comfy_host.node("CheckpointLoaderSimple")().load_checkpoint(name)


def sampling(model):
    return model.get_model_object("model_sampling")


@pytest.mark.parametrize("name, v_pred, zsnr, top, reconfigured", [
    ("none", False, False, PLAIN_SIGMA_MAX, False),
    ("keys_vpred", True, False, PLAIN_SIGMA_MAX, False),
    ("keys_vpred_ztsnr", True, True, COMFYUI_TERMINAL, False),
    ("comfy_predict_key", True, False, PLAIN_SIGMA_MAX, True),
    ("modelspec_v_kohya_ztsnr", True, True, COMFYUI_TERMINAL, True),
    ("ss_v_parameterization", True, False, PLAIN_SIGMA_MAX, True),
    ("key_vs_metadata", True, False, PLAIN_SIGMA_MAX, False),
    ("ztsnr_key_only", False, False, PLAIN_SIGMA_MAX, False),
])
def test_each_variant_is_configured_as_documented(comfy_host, files, name, v_pred, zsnr, top, reconfigured):
    import comfy.model_sampling
    model, _clip, _vae, report = load(comfy_host, f"{name}.safetensors")
    ms = sampling(model)
    assert isinstance(ms, comfy.model_sampling.ModelSamplingDiscrete)
    assert isinstance(ms, comfy.model_sampling.V_PREDICTION) == v_pred, report
    assert bool(getattr(ms, "zsnr", False)) == zsnr, report
    assert float(ms.sigmas[-1]) == pytest.approx(top, rel=1e-5)
    assert ("model_sampling" in model.object_patches) == reconfigured, report
    assert ("Reconfigured" in report) == reconfigured and ("returned as loaded" in report) != reconfigured
    core_model = core(comfy_host, f"{name}.safetensors")[0]
    if not reconfigured:  # agreeing with ComfyUI's loader, it returns exactly that model sampling
        assert type(ms).__mro__[1:] == type(sampling(core_model)).__mro__[1:]  # model_base makes a class per load
        assert torch.equal(ms.sigmas, sampling(core_model).sigmas)


def test_metadata_configures_a_keyless_file_exactly_as_the_keys_would(comfy_host, files):
    # A NoobAI-style file that lost its keys but kept its metadata samples as the file with the keys.
    keyed = sampling(core(comfy_host, "keys_vpred_ztsnr.safetensors")[0])
    from_metadata = sampling(load(comfy_host, "modelspec_v_kohya_ztsnr.safetensors")[0])
    assert torch.equal(from_metadata.sigmas, keyed.sigmas)
    assert from_metadata.snrt_terminal_sigma is None  # the ztsnr_* schedulers keep their default start
    for sigma in (torch.tensor([3.0]), torch.tensor([4518.0])):
        assert torch.equal(from_metadata.timestep(sigma), keyed.timestep(sigma))
    plain_v = sampling(load(comfy_host, "comfy_predict_key.safetensors")[0])
    assert torch.equal(plain_v.sigmas, sampling(core(comfy_host, "keys_vpred.safetensors")[0]).sigmas)


def test_report_names_sources_and_the_winner(comfy_host, files):
    report = load(comfy_host, "key_vs_metadata.safetensors")[3]
    assert "Found: keys v_pred; metadata modelspec.prediction_type = 'epsilon'" in report
    assert "Prediction: v_prediction (from key v_pred)" in report
    assert "modelspec.prediction_type = 'epsilon' says eps, key v_pred says v_prediction: key v_pred wins" in report
    report = load(comfy_host, "ztsnr_key_only.safetensors")[3]
    assert "ZTSNR needs v-prediction" in report and "ZTSNR: off" in report
    report = load(comfy_host, "none.safetensors")[3]
    assert "Found: keys none; metadata none" in report and "Family: SDXL" in report
    assert "from ComfyUI's loader; the file states nothing" in report and "Terminal σ 14.61" in report
    report = load(comfy_host, "modelspec_v_kohya_ztsnr.safetensors")[3]
    assert "Terminal σ 4518.76 (ComfyUI's ZTSNR pin" in report and "eps → v_prediction, ZTSNR off → on" in report


def test_the_same_weights_as_the_core_loader(comfy_host, files):
    ours = load(comfy_host, "full_keyless_vpred.safetensors")
    theirs = core(comfy_host, "full_keyless_vpred.safetensors")
    assert "model_sampling" in ours[0].object_patches  # reconfigured, yet the same weights
    pairs = [(ours[0].model.state_dict(), theirs[0].model.state_dict()),
             (ours[1].cond_stage_model.state_dict(), theirs[1].cond_stage_model.state_dict()),
             (ours[2].first_stage_model.state_dict(), theirs[2].first_stage_model.state_dict())]
    for a, b in pairs:
        assert a.keys() == b.keys() and len(a) > 0
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert type(ours[1].cond_stage_model) is type(theirs[1].cond_stage_model)
    assert ours[0].model.model_config.unet_config == theirs[0].model.model_config.unet_config


def test_flow_model_is_returned_as_loaded(comfy_host, files):
    import comfy.model_sampling
    model, clip, vae, report = load(comfy_host, "sd35.safetensors")
    assert isinstance(sampling(model), comfy.model_sampling.ModelSamplingDiscreteFlow) and not model.object_patches
    assert clip is None and vae is not None  # SD3.5 files carry no text encoders; core gives None too
    assert "flow model, metadata prediction keys not applicable (modelspec.prediction_type = 'epsilon' not applied)" \
        in report and "shift 3" in report


def test_a_pickle_checkpoint_has_no_header_and_loads_as_core(comfy_host, files):
    import comfy.model_sampling
    model, _clip, _vae, report = load(comfy_host, "pickled.ckpt")
    assert "Not a safetensors file (.ckpt): no header to read" in report
    assert isinstance(sampling(model), comfy.model_sampling.V_PREDICTION) and not model.object_patches


def test_v_prediction_auto_keeps_the_loaders_decision(comfy_host, files, caplog):
    import comfy.model_sampling
    model = load(comfy_host, "modelspec_v_kohya_ztsnr.safetensors")[0]
    node = comfy_host.node("SNRTVPrediction")
    auto = sampling(node.execute(model, "auto", "auto", "ComfyUI (4518.76)", False)[0])
    assert isinstance(auto, comfy.model_sampling.V_PREDICTION) and auto.zsnr
    assert torch.equal(auto.sigmas, sampling(model).sigmas)
    with caplog.at_level(logging.WARNING):
        node.execute(model, "auto", "on", "NovelAI (20000)", False)
    assert "without the 'ztsnr' key" not in caplog.text  # the metadata marked it ZTSNR


def test_the_node_lists_the_checkpoints_folder(comfy_host, files):
    schema = comfy_host.node("SNRTCheckpointLoader").define_schema()
    assert {"none.safetensors", "sd35.safetensors", "pickled.ckpt"} <= set(schema.inputs[0].options)
    assert [o.io_type for o in schema.outputs] == ["MODEL", "CLIP", "VAE", "STRING"]


def test_the_door_notices_comfyui_reading_the_metadata_itself(comfy_host, monkeypatch):
    # ComfyUI's CheckpointSave writes modelspec.predict_key (comfy_extras/nodes_model_merging.py): a loading
    # module whose source names it is what a release that starts reading it would look like.
    door = comfy_host.pack_module("internals.checkpoint_loading")
    assert door.contract_problems() == []
    monkeypatch.setattr(door, "LOADING_MODULES", door.LOADING_MODULES + ("comfy_extras.nodes_model_merging",))
    found = door.contract_problems()
    assert len(found) == 1 and "comfy_extras.nodes_model_merging now reads modelspec.predict_key itself" in found[0]
