"""Models: the reference DCGAN (one model file, :mod:`gan_probe.models.dcgan`, exported here) and any other
GAN by name (:mod:`gan_probe.models.sources`, with :mod:`~gan_probe.models.cards` and
:mod:`~gan_probe.models.adapters`)."""

from gan_probe.models.dcgan import (
    DCGANConfig,
    Discriminator,
    Generator,
    paper_config,
    sample_z,
    weights_init,
)

__all__ = ["DCGANConfig", "Discriminator", "Generator", "paper_config", "sample_z", "weights_init"]
