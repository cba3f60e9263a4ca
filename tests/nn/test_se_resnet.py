"""SE-ResNet blocks: shapes with leading particle dims, the excitation gate, helpers."""

import pytest
import torch

from pyro_dgm.nn.se_resnet import SEResidualBlock, SqueezeExcitation, apply_to_images, broadcast_cat, se_resnet


@pytest.mark.parametrize(
    "resample, in_side, out_side", [("none", 8, 8), ("down", 8, 4), ("up", 4, 8)]
)
def test_block_shapes_with_leading_particle_dims(resample, in_side, out_side):
    block = SEResidualBlock(3, 5, resample)
    output = block(torch.randn(2, 4, 3, in_side, in_side))  # (particles, batch, C, H, W)
    assert output.shape == (2, 4, 5, out_side, out_side)


def test_same_shape_block_has_an_identity_skip():
    block = SEResidualBlock(4, 4)
    assert isinstance(block.skip, torch.nn.Identity)
    for parameter in block.residual.parameters():
        torch.nn.init.zeros_(parameter)
    images = torch.randn(3, 4, 6, 6)
    torch.testing.assert_close(block(images), images)  # zero residual: exactly the input


def test_excitation_gates_lie_in_the_unit_interval_and_scale_each_channel():
    excitation = SqueezeExcitation(6)
    images = 10 * torch.randn(5, 6, 4, 4)
    gate = excitation.gate(images)
    assert gate.shape == (5, 6)
    assert ((gate > 0) & (gate < 1)).all()
    torch.testing.assert_close(excitation(images), images * gate[..., None, None])


def test_gate_depends_only_on_channel_means():
    excitation = SqueezeExcitation(3)
    images = torch.randn(2, 3, 4, 4)
    shuffled = images.flatten(-2)[..., torch.randperm(16)].unflatten(-1, (4, 4))
    torch.testing.assert_close(excitation.gate(images), excitation.gate(shuffled))


def test_stack_and_helpers():
    stack = se_resnet(2, 3, num_blocks=2, resample="down")
    assert len(stack) == 2 and stack(torch.zeros(1, 2, 8, 8)).shape == (1, 3, 4, 4)
    with pytest.raises(ValueError, match="num_blocks"):
        se_resnet(2, 3, num_blocks=0)
    with pytest.raises(ValueError, match="resample"):
        SEResidualBlock(2, 2, resample="sideways")
    with pytest.raises(ValueError, match="images"):
        apply_to_images(torch.nn.Identity(), torch.zeros(4, 4))
    joined = broadcast_cat([torch.zeros(3, 1, 2, 4, 4), torch.ones(5, 1, 4, 4)], event_dims=3)
    assert joined.shape == (3, 5, 3, 4, 4) and joined[..., 2, :, :].eq(1).all()
