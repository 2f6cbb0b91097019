"""Compatibility: this module moved to :mod:`fxfault.runtime.training` in fxfault 0.2; both paths work."""

from .runtime.training import (
    BerSchedule as BerSchedule,
)
from .runtime.training import (
    clean_quantized_weights as clean_quantized_weights,
)
from .runtime.training import (
    recalibrate_batchnorm as recalibrate_batchnorm,
)
from .runtime.training import (
    sam_step as sam_step,
)
from .runtime.training import (
    same_faults as same_faults,
)
from .runtime.training import (
    trades_loss as trades_loss,
)

__all__ = ['BerSchedule', 'clean_quantized_weights', 'recalibrate_batchnorm', 'sam_step', 'same_faults', 'trades_loss']
