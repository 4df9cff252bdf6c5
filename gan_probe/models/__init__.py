"""The reference DCGAN (one model file: :mod:`gan_probe.models.dcgan`)."""

from gan_probe.models.dcgan import (
    DCGANConfig,
    Discriminator,
    Generator,
    paper_config,
    sample_z,
    weights_init,
)

__all__ = ["DCGANConfig", "Discriminator", "Generator", "paper_config", "sample_z", "weights_init"]
