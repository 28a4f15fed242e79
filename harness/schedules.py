"""Re-export of `optimlib.schedules`, kept solely for the three calibrated baselines (submissions/adamw,
nadamw, sgd_momentum): their source hashes key the committed calibration ledger, so they still say
`from harness import schedules` until their next recalibration, when they switch to optimlib and this
module goes. Everything else imports `optimlib.schedules` directly."""

from optimlib.schedules import constant, linear_warmup, step_decay, warmup_cosine, warmup_linear_decay

__all__ = ["constant", "linear_warmup", "step_decay", "warmup_cosine", "warmup_linear_decay"]
