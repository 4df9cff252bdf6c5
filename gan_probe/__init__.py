"""gan-probe: the DCGAN paper's reference model and a GAN analysis toolbox."""

__version__ = "0.1.0"
