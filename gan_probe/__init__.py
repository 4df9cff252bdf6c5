"""gan-probe: the DCGAN paper's reference model and a GAN analysis toolbox."""

__version__ = "0.1.0"


def load_generator(spec, device="cpu"):
    """``(G, info)`` from a checkpoint, RUN_DIR, TorchScript file, model card or StyleGAN pickle
    (see :mod:`gan_probe.models.sources`); G maps flat z to images in [-1, 1]."""
    from gan_probe.models.sources import load_generator as load

    return load(spec, device)


def load_discriminator(spec, device="cpu"):
    """``(D, info)`` from any model source (see :mod:`gan_probe.models.sources`)."""
    from gan_probe.models.sources import load_discriminator as load

    return load(spec, device)


def __getattr__(name):
    # gan_probe.Scorer, imported on first use (importing gan_probe stays free of torch)
    if name == "Scorer":
        from gan_probe.metrics.scorer import Scorer

        return Scorer
    raise AttributeError(f"module 'gan_probe' has no attribute {name!r}")
