"""The sampler survey (tools/sampler_survey.py) on the real ComfyUI: every KSampler sampler, the
jump from σ 20000, model-call counts the algorithms fix, its exact-sampling floor, errors recorded."""
import pytest
import torch

PIXELS = 128  # a 16×16 latent: the survey's code paths at a fraction of a second per run


@pytest.fixture(scope="module")
def survey_module(comfy_host):
    from tools import sampler_survey
    return sampler_survey


@pytest.fixture(scope="module")
def runner(comfy_host):
    from tools import comfy_runs
    return comfy_runs.Runner(comfy_host.nodes)


@pytest.fixture(scope="module")
def result(survey_module, runner, comfy_host):
    """All samplers of the KSampler node's dropdown, both schedules, one small canvas."""
    names = comfy_host.node("KSampler").INPUT_TYPES()["required"]["sampler_name"][0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the survey runs: tiny tensors on a shared machine are faster on one thread
    try:
        return survey_module.survey(runner, list(names), [PIXELS], {PIXELS: 4}, time_limit=60.0,
                                    floor_replicates=2000, progress=lambda line: None)
    finally:
        torch.set_num_threads(threads)


def test_every_sampler_of_the_ksampler_dropdown_runs_on_both_schedules(result, comfy_host):
    names = comfy_host.node("KSampler").INPUT_TYPES()["required"]["sampler_name"][0]
    import comfy.samplers
    assert list(names) == list(comfy.samplers.KSampler.SAMPLERS)
    rows = result["rows"]
    for schedule in ("ztsnr_exponential", "karras"):
        assert [r["sampler"] for r in rows if r["schedule"] == schedule] == list(names)
    for row in rows:  # each run ends in a finite output with both metrics, or a recorded error
        assert row["error"] is not None or (row["finite"] is not None and row["seconds"] is not None)
        if row["finite"]:
            assert 0 <= row["global_error"] <= 1 and row["local_error"] >= 0


def test_the_default_schedule_starts_at_novelais_infinity_and_karras_at_the_models_sigma_max(result, comfy_host):
    from tools import comfy_runs
    model = comfy_runs.ideal_sdxl(comfy_runs.mixture_for(PIXELS), ztsnr=True)
    sigma_max = float(model.get_model_object("model_sampling").sigma_max)
    starts = {(r["schedule"]): r["sigma_0"] for r in result["rows"]}
    assert starts["ztsnr_exponential"] == pytest.approx(20000.0)  # NovelAI V3's practical ∞
    assert starts["karras"] == pytest.approx(sigma_max, rel=1e-6)
    assert sigma_max > 4000  # ComfyUI's ZTSNR pin: the last alphas_cumprod near 0, σ ≈ 4500


def test_model_calls_match_the_algorithms(result):
    """Euler calls the model once a step; Heun (Karras et al. 2022, Algorithm 1) twice, except the
    last step to σ = 0: 28 steps → 28 and 55 calls. Counts outside this would mean the wrapper
    counts wrongly or the schedule is not 28 steps."""
    calls = {(r["sampler"], r["schedule"]): r["model_calls"] for r in result["rows"]}
    for schedule in ("ztsnr_exponential", "karras"):
        assert calls[("euler", schedule)] == 28
        assert calls[("dpmpp_2m", schedule)] == 28
        assert calls[("heun", schedule)] == 55


def test_euler_and_dpmpp_2m_come_back_finite_from_the_jump(result):
    for row in result["rows"]:
        if row["sampler"] in ("euler", "dpmpp_2m"):
            assert row["error"] is None and row["finite"] and row["finite_fraction"] == 1.0, row


def test_exact_sampling_floor_matches_the_binomial_expectation(result):
    """Mean total variation of N uniform draws over K modes, E = ½ Σₖ E|Xₖ/N − 1/K| with Xₖ ~ Bin(N, 1/K),
    summed exactly from scipy's binomial pmf; the survey's floor is a Monte-Carlo estimate of it."""
    from scipy.stats import binom
    floor = result["exact_floor"][str(PIXELS)]
    n, k = floor["batch"], 6
    x = torch.arange(n + 1, dtype=torch.float64)
    expected = 0.5 * k * float((torch.from_numpy(binom.pmf(x.numpy(), n, 1 / k)) * (x / n - 1 / k).abs()).sum())
    assert floor["mean"] == pytest.approx(expected, abs=4 * floor["std"] / floor["replicates"] ** 0.5)
    assert floor["readback"] == 1.0  # nearest_modes recovers every true draw's mode


def test_a_failing_or_slow_sampler_is_recorded_not_raised(survey_module, runner):
    from tools import comfy_runs
    counting = survey_module.CountingModel(comfy_runs.mixture_for(256))
    sigmas = runner.sigmas(counting.model, "karras", 28)
    slow = survey_module.run_one(runner, counting, sigmas, "dpmpp_sde", 64, 256, time_limit=0.01)
    assert slow["error"].startswith("timeout") and slow["finite"] is None
    poisoned = sigmas.clone()
    poisoned[5] = float("nan")  # a NaN mid-schedule: every sample goes non-finite, and the survey says so
    broken = survey_module.run_one(runner, counting, poisoned, "euler", 2, 256, time_limit=60.0)
    assert broken["error"] is None and broken["finite"] is False and broken["finite_fraction"] == 0.0
    assert broken["global_error"] is None
