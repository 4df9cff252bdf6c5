"""The peer: a plain pytorch/examples `dcgan/main.py`-style loop, adapted to 32 px digits.

Same architecture as gan-probe's reference DCGAN (ngf = ndf = 64, nz = 100, 4x4 kernels),
same data (scikit-learn digits, upscaled to 32 px, in [-1, 1]), same batch and step count.
Like pytorch/examples: a DataLoader with 2 workers, Sigmoid + BCELoss, D then G each step.
``--in-memory``: the lean variant: no DataLoader, each epoch indexes the in-memory tensor with a
fresh permutation (what gan-probe does for digits); no files written besides a final state dict.
Run by benchmarks/train_speed.py; not part of the package.
"""

import argparse
import contextlib
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=100)
p.add_argument("--batch-size", type=int, default=128)
p.add_argument("--workers", type=int, default=2)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--in-memory", action="store_true", help="index the tensor directly (no DataLoader)")
p.add_argument("--device", default="cpu")
p.add_argument("--bf16", action="store_true", help="bf16 autocast for the nets (loss in float32), on CUDA")
p.add_argument("--channels-last", action="store_true", help="channels_last memory format")
opt = p.parse_args()
device = torch.device(opt.device)
fmt = torch.channels_last if opt.channels_last else torch.contiguous_format
autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if opt.bf16 else None
torch.manual_seed(opt.seed)
nz, ngf, ndf, nc = 100, 64, 64, 1

x = torch.from_numpy(load_digits().images.astype(np.float32) / 16.0)[:, None]
x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False).clamp(0, 1) * 2 - 1


def in_memory_batches():
    perm = torch.randperm(len(x))
    for i in range(len(x) // opt.batch_size):
        yield (x[perm[i * opt.batch_size:(i + 1) * opt.batch_size]],)


if opt.in_memory:
    loader = None
else:
    loader = DataLoader(TensorDataset(x), batch_size=opt.batch_size, shuffle=True, num_workers=opt.workers,
                        drop_last=True)


def weights_init(m):
    name = m.__class__.__name__
    if name.find("Conv") != -1:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif name.find("BatchNorm") != -1:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


netG = nn.Sequential(
    nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
    nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
    nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
    nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())
netD = nn.Sequential(
    nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
    nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
    nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
    nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False), nn.Sigmoid())
netG.apply(weights_init)
netD.apply(weights_init)
netG.to(device, memory_format=fmt)
netD.to(device, memory_format=fmt)
criterion = nn.BCELoss()
optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))

step = 0
t0 = time.perf_counter()
while step < opt.steps:
    for (real,) in (in_memory_batches() if loader is None else loader):
        b = real.size(0)
        real = real.to(device, non_blocking=True, memory_format=fmt)
        ones, zeros = torch.full((b,), 1.0, device=device), torch.full((b,), 0.0, device=device)
        netD.zero_grad()
        with autocast() if autocast else contextlib.nullcontext():
            out = netD(real).view(-1)
        errD_real = criterion(out.float(), ones)
        errD_real.backward()
        noise = torch.rand(b, nz, 1, 1, device=device) * 2 - 1
        with autocast() if autocast else contextlib.nullcontext():
            fake = netG(noise)
            out = netD(fake.detach()).view(-1)
        errD_fake = criterion(out.float(), zeros)
        errD_fake.backward()
        optD.step()
        netG.zero_grad()
        with autocast() if autocast else contextlib.nullcontext():
            out = netD(fake).view(-1)
        errG = criterion(out.float(), ones)
        errG.backward()
        optG.step()
        step += 1
        if step % 10 == 0:
            print(f"[{step}/{opt.steps}] Loss_D {(errD_real + errD_fake).item():.4f} Loss_G {errG.item():.4f}")
        if step >= opt.steps:
            break
torch.save(netG.state_dict(), "/dev/null")
if device.type == "cuda":
    torch.cuda.synchronize()
print(f"loop: {time.perf_counter() - t0:.2f} s")
