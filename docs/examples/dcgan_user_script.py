"""A plain PyTorch DCGAN training script, pytorch/examples' dcgan/main.py style (no gan-probe code),
on scikit-learn's 8x8 digits upsampled to 32x32, that exports its models for gan-probe at the end:

    G.ts + G.ts.json   the generator as TorchScript, with its sidecar card
    D.json + netD.pth  the discriminator as a factory card (this file's ``Discriminator``) and its state dict

Run it (a few hundred steps give recognisable digits; ``--steps 20`` is a smoke test):

    python docs/examples/dcgan_user_script.py --out mygan --steps 300
    export PYTHONPATH=docs/examples      # so D.json's factory (dcgan_user_script:Discriminator) imports
    gan-probe sample mygan/G.ts --n 16 --out S
    gan-probe classify mygan/D.json --features disc --dataset digits

See docs/your-model.md. tests/test_new_user_trial.py runs exactly this.
"""

from __future__ import annotations

import argparse
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim


class Generator(nn.Module):
    def __init__(self, nz=100, ngf=64, nc=1):
        super().__init__()
        self.main = nn.Sequential(
            # input is Z, going into a convolution: nz x 1 x 1 -> (ngf*4) x 4 x 4
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            # (ngf*4) x 4 x 4 -> (ngf*2) x 8 x 8
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            # (ngf*2) x 8 x 8 -> ngf x 16 x 16
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            # ngf x 16 x 16 -> nc x 32 x 32
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, input):
        return self.main(input)


class Discriminator(nn.Module):
    def __init__(self, ndf=64, nc=1):
        super().__init__()
        self.main = nn.Sequential(
            # nc x 32 x 32 -> ndf x 16 x 16
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            # ndf x 16 x 16 -> (ndf*2) x 8 x 8
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            # (ndf*2) x 8 x 8 -> (ndf*4) x 4 x 4
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            # (ndf*4) x 4 x 4 -> 1
            nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, input):
        return self.main(input).view(-1, 1).squeeze(1)


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def digits_32() -> torch.Tensor:
    """sklearn's 1,797 digits (8x8, values 0-16) as N x 1 x 32 x 32 in [-1, 1]."""
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=32, mode="bilinear", align_corners=False)
    return x.clamp(0, 1) * 2 - 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="mygan")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--nz", type=int, default=100)
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.0002)
    parser.add_argument("--beta1", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=999)
    opt = parser.parse_args(argv)
    os.makedirs(opt.out, exist_ok=True)
    torch.manual_seed(opt.seed)

    data = digits_32()
    netG = Generator(opt.nz, opt.ngf)
    netG.apply(weights_init)
    netD = Discriminator(opt.ndf)
    netD.apply(weights_init)
    criterion = nn.BCELoss()
    optimizerD = optim.Adam(netD.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
    optimizerG = optim.Adam(netG.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
    real_label, fake_label = 1.0, 0.0

    for step in range(opt.steps):
        real = data[torch.randint(len(data), (opt.batch_size,))]
        b_size = real.size(0)
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        label = torch.full((b_size,), real_label)
        errD_real = criterion(netD(real), label)
        errD_real.backward()
        noise = torch.randn(b_size, opt.nz, 1, 1)
        fake = netG(noise)
        label.fill_(fake_label)
        errD_fake = criterion(netD(fake.detach()), label)
        errD_fake.backward()
        optimizerD.step()
        # (2) Update G network: maximize log(D(G(z)))
        netG.zero_grad()
        label.fill_(real_label)
        errG = criterion(netD(fake), label)
        errG.backward()
        optimizerG.step()
        if step % 50 == 0 or step == opt.steps - 1:
            print(f"[{step}/{opt.steps}] Loss_D: {(errD_real + errD_fake).item():.4f} Loss_G: {errG.item():.4f}")

    # ---- export for gan-probe (docs/your-model.md)
    netG.eval()
    netD.eval()
    torch.jit.save(torch.jit.script(netG), os.path.join(opt.out, "G.ts"))
    with open(os.path.join(opt.out, "G.ts.json"), "w") as f:
        json.dump({"kind": "generator", "z_dim": opt.nz, "z_shape": [opt.nz, 1, 1], "z_dist": "normal",
                   "output_range": [-1, 1], "image_size": 32, "channels": 1, "num_classes": 0}, f, indent=1)
    torch.save(netD.state_dict(), os.path.join(opt.out, "netD.pth"))
    with open(os.path.join(opt.out, "D.json"), "w") as f:
        json.dump({"kind": "discriminator", "factory": "dcgan_user_script:Discriminator",
                   "kwargs": {"ndf": opt.ndf}, "state_dict": "netD.pth", "image_size": 32, "channels": 1,
                   "output_range": [-1, 1]}, f, indent=1)


if __name__ == "__main__":
    main()
