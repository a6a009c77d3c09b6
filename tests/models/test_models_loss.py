import numpy as np
import pytest
import torch

from particleseg.models import DeepSupervisionLoss, UNet, deep_supervision_weights, dice_ce_loss
from particleseg.models.loss import downsample_target, soft_dice_loss


def random_border_core(shape=(16, 16, 16), n=4, seed=0):
    """Random spheres: inner part core (1), outer shell of ~2 voxels border (2)."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(shape)
    out = np.zeros(shape, np.int64)
    for _ in range(n):
        c = rng.uniform(3, np.array(shape) - 3)
        r = rng.uniform(3, 5)
        d = np.sqrt((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2)
        out[d < r] = 2
        out[d < r - 2] = 1
    return torch.from_numpy(out)


def test_perfect_logits_beat_random():
    torch.manual_seed(0)
    target = random_border_core()[None]
    perfect = 20.0 * torch.nn.functional.one_hot(target, 3).permute(0, 4, 1, 2, 3).float()
    random = torch.randn(1, 3, 16, 16, 16)
    lp, lr = dice_ce_loss(perfect, target), dice_ce_loss(random, target)
    assert lp < 1e-3
    assert lp < lr


def test_dice_matches_hand_computation():
    # 1 sample, 2 voxels along X, 3 classes. Softmax of [0, log 3, 0] = [0.2, 0.6, 0.2].
    logits = torch.tensor([[0.0, np.log(3), 0.0], [0.0, 0.0, 0.0]]).T.reshape(1, 3, 1, 1, 2)
    target = torch.tensor([1, 2]).reshape(1, 1, 1, 2)
    # class 1: p = [0.6, 1/3], g = [1, 0] -> tp 0.6, fp 1/3, fn 0.4
    # class 2: p = [0.2, 1/3], g = [0, 1] -> tp 1/3, fp 0.2, fn 2/3
    s = 1e-5
    d1 = (2 * 0.6 + s) / (2 * 0.6 + 1 / 3 + 0.4 + s)
    d2 = (2 / 3 + s) / (2 / 3 + 0.2 + 2 / 3 + s)
    expected = 1 - (d1 + d2) / 2
    got = dice_ce_loss(logits, target, weight_ce=0.0)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert soft_dice_loss(logits, target).item() == pytest.approx(expected, rel=1e-5)
    ce = -(np.log(0.6) + np.log(1 / 3)) / 2
    assert dice_ce_loss(logits, target).item() == pytest.approx(expected + ce, rel=1e-5)
    # (B, 1, Z, Y, X) targets are accepted too
    assert dice_ce_loss(logits, target[:, None]).item() == pytest.approx(expected + ce, rel=1e-5)


def test_batch_dice_pools_the_batch():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4, 4))
    pooled = soft_dice_loss(logits, target)
    per_sample = soft_dice_loss(logits, target, batch_dice=False)
    assert not torch.isclose(pooled, per_sample)


def test_bad_target_raises():
    logits = torch.randn(1, 3, 4, 4, 4)
    with pytest.raises(ValueError, match="does not match"):
        dice_ce_loss(logits, torch.zeros(1, 4, 4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        dice_ce_loss(logits, torch.zeros(1, 4, 4, 4))


def test_deep_supervision_weights():
    w = deep_supervision_weights(5)
    assert w == pytest.approx([8 / 15, 4 / 15, 2 / 15, 1 / 15, 0.0])
    assert w == pytest.approx([0.533333, 0.266667, 0.133333, 0.066667, 0.0], abs=1e-6)
    assert sum(w) == pytest.approx(1.0)
    assert deep_supervision_weights(1) == [1.0]


def test_downsample_target_is_nearest_neighbour():
    target = torch.randint(0, 3, (2, 8, 8, 8))
    down = downsample_target(target, (4, 4, 4))
    assert torch.equal(down, target[:, ::2, ::2, ::2])
    ref = torch.nn.functional.interpolate(target[:, None].float(), size=(4, 4, 4), mode="nearest")
    assert torch.equal(down, ref[:, 0].long())
    assert downsample_target(target, (3, 8, 8)).shape == (2, 3, 8, 8)


def test_deep_supervision_loss_combines_outputs():
    torch.manual_seed(0)
    target = torch.randint(0, 3, (2, 8, 8, 8))
    outs = [torch.randn(2, 3, 8 // 2**i, 8 // 2**i, 8 // 2**i) for i in range(3)]
    w = deep_supervision_weights(3)
    expected = sum(
        wi * dice_ce_loss(o, downsample_target(target, o.shape[2:]))
        for wi, o in zip(w, outs, strict=True)
    )
    loss = DeepSupervisionLoss()
    assert loss(outs, target).item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss(outs, target[:, None]).item() == pytest.approx(expected.item(), rel=1e-6)
    # a plain tensor is a single output
    assert loss(outs[0], target).item() == pytest.approx(dice_ce_loss(outs[0], target).item())
    with pytest.raises(ValueError, match="weights"):
        DeepSupervisionLoss(weights=[1.0, 0.0])(outs, target)


def test_tiny_unet_overfits_one_target():
    # Deterministic on CPU. After 60 steps the ratio final/initial lies in 0.10-0.44 over seeds
    # 0-7 (after 30 steps up to 0.55: momentum 0.99 ramps up slowly), so 0.5 has a margin.
    torch.manual_seed(0)
    target = random_border_core(seed=0)[None]
    image = target.float()[None] + 0.2 * torch.randn(1, 1, 16, 16, 16)
    model = UNet(n_stages=3, features_base=4).train()
    criterion = DeepSupervisionLoss()
    opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.99, nesterov=True)
    losses = []
    for _ in range(61):
        loss = criterion(model(image), target)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"overfit loss: initial {losses[0]:.4f}, after 60 steps {losses[-1]:.4f}")
    assert losses[-1] < 0.5 * losses[0]
