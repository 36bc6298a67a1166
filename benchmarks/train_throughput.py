"""Training throughput: the pytorch/examples DCGAN recipe against gantrain.

Both sides train the same 64 px DCGAN (nz 100, ngf/ndf 64, Adam 2e-4, betas
0.5/0.999) on the same images at the same batch size, in one invocation:

* reference -- the recipe as pytorch/examples' ``dcgan/main.py`` runs it
  (re-written here, not imported): JPEG files decoded with PIL in a DataLoader
  with 2 workers (resize, centre crop, to tensor, normalize), Sigmoid at the
  end of D with ``nn.BCELoss``, fp32, separate backward passes for real and
  fake, gradients of D computed in the G step, and ``.item()`` on the losses
  and D outputs every step (a host sync per step on a GPU);
* gantrain -- ``gantrain.train.train`` on the gandata dataset built from the
  same images: uint8 dataset resident on the device, batches drawn and
  normalized there, BCE-with-logits, no per-step sync.

Modes: ``fast`` is gantrain's defaults (bf16 autocast, channels_last and fused
Adam on CUDA); ``parity`` is fp32 with the same loss and memory format, so the
comparison isolates the input pipeline and the loop. Rounds alternate
reference and gantrain, and medians are reported, because a shared machine's
load changes between measurements.

    .venv/bin/python benchmarks/train_throughput.py                  # CPU or GPU, both modes
    .venv/bin/python benchmarks/train_throughput.py --mode fast --batch-size 128 --steps 200
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# --------------------------------------------------------------------------------------------
# The reference recipe (pytorch/examples dcgan, as that example runs it)


def reference_models(nz: int, ngf: int, ndf: int, nc: int):
    import torch.nn as nn

    generator = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
    )
    discriminator = nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
    )

    def init(m):
        name = type(m).__name__
        if "Conv" in name:
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif "BatchNorm" in name:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)

    generator.apply(init)
    discriminator.apply(init)
    return generator, discriminator


class JpegFolder:
    """ImageFolder + Resize + CenterCrop + ToTensor + Normalize(0.5, 0.5), with PIL."""

    def __init__(self, root: Path, size: int):
        self.files = sorted(root.glob("*/*.jpg"))
        self.classes = sorted({f.parent.name for f in self.files})
        self.size = size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        import torch
        from PIL import Image

        path = self.files[i]
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            scale = self.size / min(w, h)
            if scale != 1:
                im = im.resize((round(w * scale), round(h * scale)), Image.BILINEAR)
            w, h = im.size
            left, top = (w - self.size) // 2, (h - self.size) // 2
            im = im.crop((left, top, left + self.size, top + self.size))
            x = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255)
        return (x - 0.5) / 0.5, self.classes.index(path.parent.name)


def run_reference(jpeg_dir: Path, size: int, batch_size: int, warmup: int, steps: int, device, seed: int) -> float:
    """images/s of the reference recipe over ``steps`` steps after ``warmup``."""
    import torch
    import torch.nn as nn
    import torch.optim as optim

    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = True  # as the example sets it
    dataset = JpegFolder(jpeg_dir, size)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=2)
    nz = 100
    netG, netD = reference_models(nz, 64, 64, 3)
    netG, netD = netG.to(device), netD.to(device)
    criterion = nn.BCELoss()
    optimizerD = optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizerG = optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real_label, fake_label = 1.0, 0.0
    step, start = 0, None
    while True:
        for data in loader:
            if step == warmup:
                _sync(device)
                start = time.perf_counter()
            # (1) D: maximize log(D(x)) + log(1 - D(G(z)))
            netD.zero_grad()
            real = data[0].to(device)
            b = real.size(0)
            label = torch.full((b,), real_label, dtype=real.dtype, device=device)
            output = netD(real).view(-1)
            errD_real = criterion(output, label)
            errD_real.backward()
            D_x = output.mean().item()
            noise = torch.randn(b, nz, 1, 1, device=device)
            fake = netG(noise)
            label.fill_(fake_label)
            output = netD(fake.detach()).view(-1)
            errD_fake = criterion(output, label)
            errD_fake.backward()
            D_G_z1 = output.mean().item()
            errD = errD_real + errD_fake
            optimizerD.step()
            # (2) G: maximize log(D(G(z)))
            netG.zero_grad()
            label.fill_(real_label)
            output = netD(fake).view(-1)
            errG = criterion(output, label)
            errG.backward()
            D_G_z2 = output.mean().item()
            optimizerG.step()
            _ = (errD.item(), errG.item(), D_x, D_G_z1, D_G_z2)  # the example prints these every step
            step += 1
            if step == warmup + steps:
                _sync(device)
                return steps * batch_size / (time.perf_counter() - start)


# --------------------------------------------------------------------------------------------
# gantrain


def run_gantrain(data_dir: Path, work: Path, batch_size: int, warmup: int, steps: int, device, seed: int,
                 mode: str, compile_: bool) -> float:
    """images/s of gantrain over ``steps`` steps after ``warmup``."""
    from gantrain.config import TrainConfig
    from gantrain.train import train

    run_dir = work / "gantrain-run"
    shutil.rmtree(run_dir, ignore_errors=True)
    marks: dict[int, float] = {}

    class Timer:
        def start(self, total, initial): pass
        def advance(self, step):
            if step in (warmup, warmup + steps):
                _sync(device)  # measure finished work, not queued work
                marks[step] = time.perf_counter()
        def log(self, step, row): pass
        def message(self, text): pass
        def close(self): pass

    parity = mode == "parity"
    # The paper's network at the paper's width on any hardware (gantrain's
    # defaults are the pool D, and width 32 on a CPU), and the paper's plain
    # objective and generator (BCE, no spectral norm, no DiffAugment, no
    # mode-seeking term, no skip-z, which the recipe does not have): the
    # comparison is per network.
    config = TrainConfig(
        data=str(data_dir), run_dir=str(run_dir), steps=warmup + steps, batch_size=batch_size, seed=seed,
        arch="dcgan", ngf=64, ndf=64, nz=100, loss="bce", spectral_norm=False, diffaugment=(), diversity=0.0, skip_z=False,
        device=str(device), precision="fp32" if parity else "auto", channels_last=False if parity else None,
        compile=compile_ and not parity, sample_every=10**9, checkpoint_every=10**9, eval_every=0,
    )
    train(config, reporter=Timer())
    return steps * batch_size / (marks[warmup + steps] - marks[warmup])


def _sync(device) -> None:
    import torch

    if getattr(device, "type", str(device)).startswith("cuda"):
        torch.cuda.synchronize()


# --------------------------------------------------------------------------------------------


def prepare_data(work: Path, count: int, size: int) -> tuple[Path, Path]:
    """The shapes dataset (gandata) and the same images as JPEG files in class folders."""
    from PIL import Image

    from gandata import open_dataset
    from gandata.config import BuildConfig, ImageConfig, SourceSpec
    from gandata.pipeline import build

    data = work / f"shapes{size}-{count}"
    if not (data / "manifest.json").is_file():
        build(BuildConfig(sources=(SourceSpec(f"synth:shapes?count={count}"),), output=str(data), image=ImageConfig(size_px=size), workers=0))
    jpeg = work / f"jpeg{size}-{count}"
    if not (jpeg / ".done").exists():
        shutil.rmtree(jpeg, ignore_errors=True)
        ds = open_dataset(data)
        arrays = ds.load_all()
        for i, (image, label) in enumerate(zip(arrays.images, arrays.labels)):
            folder = jpeg / ds.classes[int(label)]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"{i:06d}.jpg", quality=95)
        (jpeg / ".done").touch()
    return data, jpeg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["fast", "parity", "both"], default="both")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=None, help="[default: 128 on GPU, 64 on CPU]")
    parser.add_argument("--steps", type=int, default=None, help="Timed steps per measurement [default: 200 GPU, 6 CPU].")
    parser.add_argument("--warmup", type=int, default=None, help="Untimed steps first [default: 20 GPU, 2 CPU].")
    parser.add_argument("--rounds", type=int, default=None, help="Alternating rounds [default: 3 GPU, 2 CPU].")
    parser.add_argument("--count", type=int, default=5000, help="Images in the dataset.")
    parser.add_argument("--compile", action="store_true", help="Also torch.compile gantrain in fast mode.")
    parser.add_argument("--work", default=None, help="Work directory [default: a temporary one].")
    parser.add_argument("--json", default=None, help="Write the results here.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from gantrain.runtime import resolve_device

    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    batch = args.batch_size or (128 if gpu else 64)
    steps = args.steps or (200 if gpu else 6)
    warmup = args.warmup if args.warmup is not None else (20 if gpu else 2)
    rounds = args.rounds or (3 if gpu else 2)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="gantrain-throughput-"))
    work.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(device) if gpu else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}; 64 px DCGAN, batch {batch}, {warmup} warm-up + {steps} timed steps, "
          f"{rounds} alternating rounds", flush=True)
    data, jpeg = prepare_data(work, args.count, 64)

    modes = ["fast", "parity"] if args.mode == "both" else [args.mode]
    ref: list[float] = []
    ours: dict[str, list[float]] = {m: [] for m in modes}
    for r in range(rounds):
        ref.append(run_reference(jpeg, 64, batch, warmup, steps, device, args.seed))
        print(f"round {r + 1}: reference {ref[-1]:8.1f} images/s", flush=True)
        for m in modes:
            ours[m].append(run_gantrain(data, work, batch, warmup, steps, device, args.seed, m, args.compile))
            print(f"round {r + 1}: gantrain {m:6s} {ours[m][-1]:8.1f} images/s", flush=True)
    ref_median = statistics.median(ref)
    results = {"device": name, "batch_size": batch, "steps": steps, "rounds": rounds, "reference": ref, "gantrain": ours,
               "reference_median": ref_median}
    print(f"\nreference (pytorch/examples recipe): {ref_median:8.1f} images/s (median)")
    for m in modes:
        med = statistics.median(ours[m])
        results[f"{m}_median"] = med
        results[f"{m}_ratio"] = med / ref_median
        print(f"gantrain {m:6s}                     : {med:8.1f} images/s (median)   ratio {med / ref_median:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
