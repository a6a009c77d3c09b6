"""Networks and losses (torch): a plain nnU-Net-style 3D U-Net and the Dice + CE loss."""

from particleseg.models.loss import DeepSupervisionLoss, deep_supervision_weights, dice_ce_loss
from particleseg.models.unet import UNet

__all__ = ["DeepSupervisionLoss", "UNet", "deep_supervision_weights", "dice_ce_loss"]
