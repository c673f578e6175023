"""Losses for crack segmentation: focal, soft IoU and SCNet's deep-supervised combination."""

from crackseg.train.losses._functional import focal_loss_with_logits, soft_iou_loss_with_logits
from crackseg.train.losses.combo import SCNetLoss
from crackseg.train.losses.focal import FocalLoss
from crackseg.train.losses.soft_iou import SoftIoULoss

__all__ = ["FocalLoss", "SCNetLoss", "SoftIoULoss", "focal_loss_with_logits", "soft_iou_loss_with_logits"]
