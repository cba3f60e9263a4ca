"""`benchmarks.paired_difference`: two runs' per-image estimates, differenced image by image."""

import math

import pytest
import torch

from benchmarks import paired_difference
from benchmarks.evaluation import save_evaluation


def _run(folder, per_image):
    folder.mkdir(parents=True)
    save_evaluation(folder, ({"log_p": per_image.mean().item()}, per_image), seconds=1.0, steps=10)
    return folder


def test_the_difference_is_paired_over_images(tmp_path, capsys):
    images = torch.tensor([-90.0, -100.0, -110.0, -120.0])  # a spread of 30 nats between images
    first = _run(tmp_path / "a", images + torch.tensor([2.0, 1.0, 3.0, -1.0]))
    second = _run(tmp_path / "b", images)
    result = paired_difference.paired_difference(paired_difference.per_image_log_p(first),
                                                 paired_difference.per_image_log_p(second))
    differences = torch.tensor([2.0, 1.0, 3.0, -1.0], dtype=torch.float64)
    assert result.mean == pytest.approx(1.25)
    assert result.standard_error == pytest.approx(differences.std().item() / math.sqrt(4))  # not the images' spread
    assert result.images == 4 and result.share_ahead == pytest.approx(0.75)
    assert paired_difference.main([str(first), str(second)]) == 0
    assert "+1.25 ± 0.85 nats over 4 test images (paired; ahead on 75.0% of them)" in capsys.readouterr().out


def test_an_unfinished_run_or_another_test_set_is_a_usage_error(tmp_path, capsys):
    finished = _run(tmp_path / "a", torch.zeros(4))
    other_test_set = _run(tmp_path / "b", torch.zeros(5))
    (tmp_path / "unfinished").mkdir()
    for second in (tmp_path / "unfinished", other_test_set):
        with pytest.raises(SystemExit) as stop:
            paired_difference.main([str(finished), str(second)])
        assert stop.value.code == 2
    errors = capsys.readouterr().err
    assert "unfinished: no evaluation.pt" in errors and "different test sets: (4,) and (5,) images" in errors
