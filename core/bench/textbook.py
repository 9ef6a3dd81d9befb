"""The textbook DCGAN loop, as the PyTorch tutorial teaches it: the speed benchmark's baseline.

Self-contained on purpose (nothing from core.models / core.train): torchvision ImageFolder +
PIL Resize/CenterCrop/ToTensor/Normalize + DataLoader(num_workers=2, shuffle=True), the classic
netG/netD (ngf = ndf = 64, nz = 100, BatchNorm), BCELoss, Adam(2e-4, betas=(0.5, 0.999)), fp32,
default thread settings, one D step and one G step per iteration. At 32 x 32 the nets lose one
block (the standard 32 px analogue) and at 128 x 128 gain one; at 64 x 64 they are the tutorial's,
parameter for parameter.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

NZ, NGF, NDF = 100, 64, 64


def weights_init(m: nn.Module) -> None:
    """The tutorial's custom init: N(0, 0.02) convs, N(1, 0.02) BatchNorm scales, zero shifts."""
    name = m.__class__.__name__
    if name.find("Conv") != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif name.find("BatchNorm") != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


class Generator(nn.Module):
    def __init__(self, nz: int = NZ, ngf: int = NGF, nc: int = 3, image_size: int = 64):
        super().__init__()
        if image_size == 64:
            self.main = nn.Sequential(
                nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),       # (ngf*8) x 4 x 4
                nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),  # (ngf*4) x 8 x 8
                nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),  # (ngf*2) x 16 x 16
                nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),      # ngf x 32 x 32
                nn.BatchNorm2d(ngf), nn.ReLU(True),
                nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),           # nc x 64 x 64
                nn.Tanh(),
            )
        elif image_size == 128:  # one block more than the tutorial's, as 32 px has one fewer
            self.main = nn.Sequential(
                nn.ConvTranspose2d(nz, ngf * 16, 4, 1, 0, bias=False),      # (ngf*16) x 4 x 4
                nn.BatchNorm2d(ngf * 16), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 16, ngf * 8, 4, 2, 1, bias=False), # (ngf*8) x 8 x 8
                nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),  # (ngf*4) x 16 x 16
                nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),  # (ngf*2) x 32 x 32
                nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),      # ngf x 64 x 64
                nn.BatchNorm2d(ngf), nn.ReLU(True),
                nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),           # nc x 128 x 128
                nn.Tanh(),
            )
        elif image_size == 32:
            self.main = nn.Sequential(
                nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False),       # (ngf*4) x 4 x 4
                nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),  # (ngf*2) x 8 x 8
                nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),      # ngf x 16 x 16
                nn.BatchNorm2d(ngf), nn.ReLU(True),
                nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),           # nc x 32 x 32
                nn.Tanh(),
            )
        else:
            raise ValueError(f"the textbook DCGAN exists at 32, 64 and 128 px, not {image_size}")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.main(input)


class Discriminator(nn.Module):
    def __init__(self, ndf: int = NDF, nc: int = 3, image_size: int = 64):
        super().__init__()
        if image_size == 64:
            self.main = nn.Sequential(
                nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),                    # ndf x 32 x 32
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),               # (ndf*2) x 16 x 16
                nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),           # (ndf*4) x 8 x 8
                nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),           # (ndf*8) x 4 x 4
                nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),                 # 1 x 1 x 1
                nn.Sigmoid(),
            )
        elif image_size == 128:
            self.main = nn.Sequential(
                nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),                    # ndf x 64 x 64
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),               # (ndf*2) x 32 x 32
                nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),           # (ndf*4) x 16 x 16
                nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),           # (ndf*8) x 8 x 8
                nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 8, ndf * 16, 4, 2, 1, bias=False),          # (ndf*16) x 4 x 4
                nn.BatchNorm2d(ndf * 16), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 16, 1, 4, 1, 0, bias=False),                # 1 x 1 x 1
                nn.Sigmoid(),
            )
        elif image_size == 32:
            self.main = nn.Sequential(
                nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),                    # ndf x 16 x 16
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),               # (ndf*2) x 8 x 8
                nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),           # (ndf*4) x 4 x 4
                nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False),                 # 1 x 1 x 1
                nn.Sigmoid(),
            )
        else:
            raise ValueError(f"the textbook DCGAN exists at 32, 64 and 128 px, not {image_size}")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.main(input)


def make_dataloader(dataroot: str, image_size: int, batch_size: int, workers: int = 2):
    """The tutorial's data pipeline, unchanged."""
    import torchvision.datasets as dset
    import torchvision.transforms as transforms
    dataset = dset.ImageFolder(root=dataroot, transform=transforms.Compose([
        transforms.Resize(image_size),
        transforms.CenterCrop(image_size),
        transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ]))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers)


class TextbookDCGAN:
    """The tutorial's networks, optimisers and loop body; ``iteration(data)`` is one loop iteration."""

    def __init__(self, image_size: int = 64, nc: int = 3, device: str | torch.device = "cpu", seed: int = 999):
        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.netG = Generator(NZ, NGF, nc, image_size).to(self.device)
        self.netG.apply(weights_init)
        self.netD = Discriminator(NDF, nc, image_size).to(self.device)
        self.netD.apply(weights_init)
        self.criterion = nn.BCELoss()
        self.real_label, self.fake_label = 1.0, 0.0
        self.optimizerD = torch.optim.Adam(self.netD.parameters(), lr=0.0002, betas=(0.5, 0.999))
        self.optimizerG = torch.optim.Adam(self.netG.parameters(), lr=0.0002, betas=(0.5, 0.999))

    def iteration(self, data) -> dict[str, float]:
        netD, netG, criterion, device = self.netD, self.netG, self.criterion, self.device
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        real_cpu = data[0].to(device)
        b_size = real_cpu.size(0)
        label = torch.full((b_size,), self.real_label, dtype=torch.float, device=device)
        output = netD(real_cpu).view(-1)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()
        noise = torch.randn(b_size, NZ, 1, 1, device=device)
        fake = netG(noise)
        label.fill_(self.fake_label)
        output = netD(fake.detach()).view(-1)
        errD_fake = criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        errD = errD_real + errD_fake
        self.optimizerD.step()
        # (2) Update G network: maximize log(D(G(z)))
        netG.zero_grad()
        label.fill_(self.real_label)
        output = netD(fake).view(-1)
        errG = criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean().item()
        self.optimizerG.step()
        return {"loss_d": errD.item(), "loss_g": errG.item(), "D_x": D_x, "D_G_z1": D_G_z1, "D_G_z2": D_G_z2,
                "batch": b_size}


def endless(loader) -> Iterator:
    """for epoch in range(num_epochs): for data in dataloader: ... -- without an epoch limit."""
    while True:
        yield from loader
