"""mixrepro: a reproducibility study of learned mixup augmentation.

Subpackages, in the order data flows through a training step:

- ``mixrepro.data``      datasets (registry), decoding cache, batched augmentation
- ``mixrepro.mixers``    static mixers (pure functions) -> (x_mix, MixTarget)
- ``mixrepro.models``    CIFAR ResNet family with stage-wise feature access
- ``mixrepro.losses``    soft CE, mixup BCE, DM(CE), DM(BCE)
- ``mixrepro.methods``   one object per method owning its training step
- ``mixrepro.training``  the single training loop, checkpoints, resume
- ``mixrepro.evaluate``  accuracy, ECE, FGSM, corruption, occlusion, timing
- ``mixrepro.results``   results store keyed by a config hash
"""

__version__ = "0.1.0"
