"""Pure tests of schedules/checkpoint_metadata.py: the safetensors header read and the precedence."""
import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from snr_toolkit.schedules import checkpoint_metadata as cm
from snr_toolkit.schedules.checkpoint_metadata import EPS, V

UNET = {"model.diffusion_model.input_blocks.0.0.weight"}


def decide(keys=(), loaded=(EPS, False), **metadata):
    return cm.decide(UNET | set(keys), {k.replace("__", "."): v for k, v in metadata.items()}, *loaded)


def test_header_is_read_without_the_tensors(tmp_path):
    path = tmp_path / "m.safetensors"
    save_file({"a": torch.ones(3), "v_pred": torch.zeros(0)}, str(path), metadata={"modelspec.predict_key": "v"})
    keys, metadata = cm.read_safetensors_header(str(path))
    assert keys == {"a", "v_pred"} and metadata == {"modelspec.predict_key": "v"}
    # Only the header is read: a file whose tensor bytes are cut off still answers.
    data = path.read_bytes()
    header_end = 8 + struct.unpack("<Q", data[:8])[0]
    (tmp_path / "cut.safetensors").write_bytes(data[:header_end])
    assert cm.read_safetensors_header(str(tmp_path / "cut.safetensors"))[0] == {"a", "v_pred"}


def test_a_file_without_metadata_and_broken_files(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({"a": torch.ones(1)}, str(path))
    assert cm.read_safetensors_header(str(path)) == (frozenset({"a"}), {})
    for name, data, words in (("short", b"\x01\x02", "shorter"), ("huge", struct.pack("<Q", 10**12) + b"{}", "length"),
                              ("cut", struct.pack("<Q", 50) + b'{"a": 1', "cut short"),
                              ("list", struct.pack("<Q", 2) + b"[]", "JSON object")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=words):
            cm.read_safetensors_header(str(tmp_path / name))


def test_non_string_metadata_is_kept_as_json(tmp_path):
    header = json.dumps({"__metadata__": {"ss_zero_terminal_snr": True, "n": 3}}).encode()
    (tmp_path / "odd").write_bytes(struct.pack("<Q", len(header)) + header)
    assert cm.read_safetensors_header(str(tmp_path / "odd"))[1] == {"ss_zero_terminal_snr": "true", "n": "3"}


def test_nothing_stated_keeps_what_comfyui_loaded():
    for loaded in ((EPS, False), (V, False), (V, True)):
        d = decide(loaded=loaded)
        assert (d.prediction, d.zsnr) == loaded and "ComfyUI's loader" in d.prediction_from and d.notes == ()


@pytest.mark.parametrize("keys, metadata, expected", [
    (("v_pred",), {}, (V, False)),
    (("v_pred", "ztsnr"), {}, (V, True)),
    ((), {"modelspec__prediction_type": "v"}, (V, False)),
    ((), {"modelspec__prediction_type": "epsilon"}, (EPS, False)),
    ((), {"modelspec__predict_key": "v"}, (V, False)),
    ((), {"modelspec__predict_key": "V_Prediction "}, (V, False)),
    ((), {"modelspec__architecture": "stable-diffusion-v2-768-v"}, (V, False)),
    ((), {"ss_v_parameterization": "true"}, (V, False)),
    ((), {"ss_v_parameterization": "True", "ss_zero_terminal_snr": "True"}, (V, True)),
    ((), {"modelspec__prediction_type": "v", "ss_zero_terminal_snr": "True"}, (V, True)),
    (("ztsnr",), {"modelspec__predict_key": "v"}, (V, True)),  # ComfyUI ignores ztsnr without v_pred; v from metadata
])
def test_each_source_decides_when_it_is_the_only_statement(keys, metadata, expected):
    d = decide(keys, **metadata)
    assert (d.prediction, d.zsnr) == expected
    assert d.notes == ()


def test_keys_beat_metadata_and_the_report_says_why():
    d = decide(("v_pred",), modelspec__prediction_type="epsilon", ss_v_parameterization="false")
    assert d.prediction == V and d.prediction_from == "key v_pred"
    assert len(d.notes) == 2 and all("key v_pred wins (ComfyUI's own loader reads the marker keys" in n for n in d.notes)
    assert "modelspec.prediction_type = 'epsilon' says eps" in d.notes[0]


def test_prediction_type_beats_comfyuis_predict_key():
    # CheckpointSave writes predict_key from the loader's guess (model.model.model_type), which a sampling patch
    # such as ModelSamplingDiscrete does not change: a re-saved keyless v-pred file says "epsilon" there.
    d = decide(modelspec__prediction_type="v", modelspec__predict_key="epsilon")
    assert d.prediction == V and "can repeat a misdetection" not in d.notes[0] and "SAI ModelSpec" in d.notes[0]


def test_metadata_overrides_comfyuis_detection():
    # SD2's loader guesses v from a weight's spread; a stated prediction wins over a guess.
    assert decide(loaded=(V, False), modelspec__prediction_type="epsilon").prediction == EPS
    assert decide(loaded=(EPS, False), ss_v_parameterization="1").prediction == V


def test_ztsnr_never_lands_on_an_eps_model():
    d = decide(("ztsnr",))
    assert (d.prediction, d.zsnr) == (EPS, False)
    assert "ZTSNR needs v-prediction" in d.notes[0] and "ignored" in d.zsnr_from
    d = decide(modelspec__prediction_type="epsilon", ss_zero_terminal_snr="True")
    assert (d.prediction, d.zsnr) == (EPS, False)


def test_zsnr_off_statement_and_key_disagree():
    d = decide(("v_pred", "ztsnr"), ss_zero_terminal_snr="False")
    assert d.zsnr is True and "ss_zero_terminal_snr = 'False' says ZTSNR off, key ztsnr says ZTSNR on" in d.notes[0]
    d = decide(("v_pred",), loaded=(V, False), ss_zero_terminal_snr="True")
    assert d.zsnr is True and d.zsnr_from == "ss_zero_terminal_snr = 'True'"


def test_values_it_does_not_know_are_reported_not_guessed():
    d = decide(modelspec__prediction_type="rectified_flow", ss_zero_terminal_snr="maybe",
               modelspec__architecture="stable-diffusion-xl-v1-base")
    assert (d.prediction, d.zsnr) == (EPS, False)
    assert len(d.notes) == 2 and all("not a value this loader knows" in n for n in d.notes)


def test_found_line_lists_markers_and_metadata():
    line = cm.found_line({"v_pred", "x"}, {"modelspec.predict_key": "v", "other": "1"})
    assert "keys v_pred;" in line and "modelspec.predict_key = 'v'" in line and "2 tensors, 2 metadata" in line
    assert "keys none; metadata none" in cm.found_line({"x"}, {})
