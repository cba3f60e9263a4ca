"""The test evaluation (``benchmarks/evaluation.py``): progress lines, and an interrupted evaluation
continues from its finished blocks to the uninterrupted result.

The check is bit-identity: the resumed evaluation restores every generator's state after the
last kept block, so it draws the very importance samples an uninterrupted run draws. A resume
that recomputed the kept blocks, skipped the generator state or re-estimated a fixed constant
(an RBM prior's log Z) would differ.
"""

import math
import os
import signal
import time

import pyro
import pyro.distributions as dist
import pytest
import torch

from benchmarks import evaluation
from benchmarks.evaluation import EVALUATION_FILE, evaluated_once, importance_estimates
from benchmarks.reproduce import RunContext, main, run_table
from benchmarks.reproduce_configs import TINY_EVAL_PARTICLES
from benchmarks.resumable_evaluation import PROGRESS_FILE, EvaluationInterrupted, EvaluationProgress, images_digest

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BLOCK = 10
"""Images per block in these tests (the harness uses 100)."""

CONSTANT_SECONDS = 0.3
"""How long the fixed constant of an evaluation takes to compute in these tests."""

IMAGES = torch.bernoulli(torch.full((60, 3), 0.5), generator=torch.Generator().manual_seed(0))
KEY = {"steps": 7, "num_samples": 4, "images": images_digest(IMAGES), "block_size": BLOCK}


def model(x):
    with pyro.plate("data", x.size(0)):
        z = pyro.sample("z", dist.Bernoulli(0.5))
        pyro.sample("x", dist.Bernoulli(0.2 + 0.6 * z.unsqueeze(-1)).to_event(1), obs=x)


def guide(x):
    with pyro.plate("data", x.size(0)):
        pyro.sample("z", dist.Bernoulli(0.3))


def guide_stopped_at(first_image: int, by_signal: bool = False):
    """:func:`guide`, but Ctrl-C arrives when it reaches the block that starts at ``first_image``
    (``by_signal``: a real SIGINT sent to this process, as ``kill -INT`` does)."""

    def stopping_guide(x):
        if torch.equal(x[0], IMAGES[first_image]) and torch.equal(x, IMAGES[first_image:first_image + BLOCK]):
            if not by_signal:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the handler runs at once; reaching the end of the nap would fail the test
        guide(x)

    return stopping_guide


@pytest.fixture
def sigint_ignored():
    """SIGINT ignored, as in a job a non-interactive shell starts in the background."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    yield
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # the evaluation put the handler back
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(evaluation, "DATA_BLOCK_SIZE", BLOCK)


def test_a_resumed_evaluation_is_bit_identical_to_an_uninterrupted_one(tmp_path):
    pyro.set_rng_seed(5)
    expected_summary, expected = importance_estimates(model, guide, IMAGES, 4)

    pyro.set_rng_seed(5)
    saved = EvaluationProgress(tmp_path, KEY)
    with pytest.raises(EvaluationInterrupted) as stop, saved.stoppable(IMAGES.size(0)):
        importance_estimates(model, guide_stopped_at(30), IMAGES, 4, saved=saved)
    assert stop.value.done == 30 and stop.value.total == 60 and stop.value.path == tmp_path / PROGRESS_FILE
    assert "after 30 of 60 images; the finished blocks are kept in" in str(stop.value)

    pyro.set_rng_seed(123)  # another process: its generators start elsewhere
    saved = EvaluationProgress(tmp_path, KEY)
    assert saved.images_done == 30
    summary, per_image = importance_estimates(model, guide, IMAGES, 4, saved=saved)
    assert torch.equal(per_image, expected)
    assert summary == expected_summary


def test_a_saved_part_of_another_evaluation_is_not_mixed_in(tmp_path):
    pyro.set_rng_seed(5)
    with pytest.raises(KeyboardInterrupt):
        importance_estimates(model, guide_stopped_at(30), IMAGES, 4, saved=EvaluationProgress(tmp_path, KEY))
    other_images = images_digest(1 - IMAGES)
    for other in ({**KEY, "steps": 8}, {**KEY, "num_samples": 5}, {**KEY, "block_size": 20}, {**KEY, "images": other_images}):
        generator = torch.get_rng_state()
        assert EvaluationProgress(tmp_path, other).images_done == 0
        assert torch.equal(torch.get_rng_state(), generator)  # nothing of the other evaluation restored
    (tmp_path / PROGRESS_FILE).write_bytes(b"truncated")
    assert EvaluationProgress(tmp_path, KEY).images_done == 0  # a damaged file: start again


def test_without_a_folder_ctrl_c_is_not_turned_into_a_resumable_stop():
    saved = EvaluationProgress(None, KEY)
    with pytest.raises(KeyboardInterrupt), saved.stoppable(IMAGES.size(0)):
        importance_estimates(model, guide_stopped_at(20), IMAGES, 4, saved=saved)


def test_a_stop_before_the_first_block_says_nothing_was_kept(tmp_path):
    saved = EvaluationProgress(tmp_path, KEY)
    with pytest.raises(EvaluationInterrupted, match="after 0 of 60 images; no block had finished"), \
            saved.stoppable(IMAGES.size(0)):
        importance_estimates(model, guide_stopped_at(0), IMAGES, 4, saved=saved)


def test_evaluated_once_keeps_constants_and_time_across_the_stop_and_removes_the_part_when_done(
    tmp_path, sigint_ignored
):
    """Stopped by ``kill -INT`` in a background job (SIGINT ignored there until the evaluation
    installs its handler)."""
    calls = []

    def constant():  # like the test AIS log Z: random, and it takes time
        calls.append(1)
        time.sleep(CONSTANT_SECONDS)
        return {"log_z": float(torch.randn(()))}

    def evaluation(stopping_guide):
        def function(saved):
            fixed = saved.constant("log_partition", constant)
            summary, per_image = importance_estimates(model, stopping_guide, IMAGES, 4, saved=saved)
            return {**summary, **fixed}, per_image

        return function

    pyro.set_rng_seed(5)
    (expected, expected_per_image), _ = evaluated_once(None, evaluation(guide), 7, 4, IMAGES)

    pyro.set_rng_seed(5)
    with pytest.raises(EvaluationInterrupted):
        evaluated_once(tmp_path, evaluation(guide_stopped_at(50, by_signal=True)), 7, 4, IMAGES)
    earlier = EvaluationProgress(tmp_path, KEY).earlier_seconds
    assert earlier > 0 and not (tmp_path / EVALUATION_FILE).exists()

    pyro.set_rng_seed(99)
    (metrics, per_image), seconds = evaluated_once(tmp_path, evaluation(guide), 7, 4, IMAGES)
    assert len(calls) == 2  # once uninterrupted, once before the stop, never on the resume
    assert metrics == expected and torch.equal(per_image, expected_per_image)
    assert earlier >= CONSTANT_SECONDS and seconds > earlier  # the constant's time is counted, and kept
    assert (tmp_path / EVALUATION_FILE).is_file() and not (tmp_path / PROGRESS_FILE).exists()


def test_a_table_stopped_during_its_test_evaluation_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, capsys):
    """End to end on a tiny RBM-prior row: Ctrl-C during the evaluation exits 130 with the resume advice;
    the rerun (no retraining) finishes the evaluation with the same log Z and the same per-image log p(x)
    as a run never stopped."""
    row = "1 linear/rbm_overlapping"
    (expected,) = run_table("dvaepp2", "tiny", context=RunContext(folder=tmp_path / "whole", rows=frozenset({row}))).rows

    passes = []
    real_log_likelihood = evaluation.log_likelihood

    def stopped_on_the_second_block(*args, **kwargs):
        if kwargs["num_samples"] == TINY_EVAL_PARTICLES:  # the test evaluation's passes, not the curve's
            passes.append(1)
            if len(passes) == 2:
                raise KeyboardInterrupt
        return real_log_likelihood(*args, **kwargs)

    monkeypatch.setattr(evaluation, "log_likelihood", stopped_on_the_second_block)
    argv = ["--table", "dvaepp2", "--budget", "tiny", "--rows", row, "--runs-dir", str(tmp_path / "parts"),
            "--output", str(tmp_path / "report.json")]
    assert main(argv) == 130
    assert "test evaluation interrupted after 10 of 20 images" in capsys.readouterr().err
    assert len(list((tmp_path / "parts").rglob(PROGRESS_FILE))) == 1

    monkeypatch.setattr(evaluation, "log_likelihood", real_log_likelihood)
    (resumed,) = run_table("dvaepp2", "tiny", context=RunContext(folder=tmp_path / "parts", rows=frozenset({row}))).rows
    assert resumed.steps == expected.steps
    assert resumed.metrics == expected.metrics  # log Z, log p(x), ELBO, BiHM's bound, ESS
    assert torch.equal(resumed.per_image_log_p, expected.per_image_log_p)
    assert not list((tmp_path / "parts").rglob(PROGRESS_FILE))


def test_the_test_evaluation_reports_each_tenth_of_the_images(capsys, monkeypatch):
    images = torch.bernoulli(torch.full((100, 3), 0.5), generator=torch.Generator().manual_seed(0))
    summary, per_image = importance_estimates(model, guide, images, 4, progress=True)
    lines = capsys.readouterr().err.rstrip("\n").split("\n")
    assert [line.split(":")[1].split(" images")[0].strip() for line in lines] == [
        f"{done} of 100" for done in range(10, 101, 10)]
    assert lines[0].startswith("  test evaluation (K = 4): 10 of 100 images, ") and lines[-1].endswith("about 0.0 min left")
    assert per_image.shape == (100,) and math.isfinite(summary["log_p"])
    importance_estimates(model, guide, images, 4)
    assert capsys.readouterr().err == ""
