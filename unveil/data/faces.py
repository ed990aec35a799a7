"""`Faces`: a whole decoded data set as three tensors, moved to the device in one piece."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from ..classes import CLASSES
from ..errors import UnveilError

SPLITS: tuple[str, ...] = ("train", "val", "test")
SPLIT_CHOICES: tuple[str, ...] = (*SPLITS, "all")


@dataclass
class Faces:
    """Decoded faces with labels and splits.

    Shape:
        images: uint8 [N, 48, 48]; labels: int64 [N] (canonical class order); splits: int8 [N] (index
        into SPLITS); ids: N strings naming each face in its source (a path, or a CSV line).
    """

    images: torch.Tensor
    labels: torch.Tensor
    splits: torch.Tensor
    ids: list[str] = field(repr=False)
    source: str = ""
    fingerprint: str = ""
    sharded: bool = False   # the training faces are already this data-parallel rank's shard (a face store)
    skipped: list[dict] = field(default_factory=list, repr=False)  # {id, label, reason}: inputs the source left out
    # A data mix (`unveil.data.mix`): which part each face comes from (index into `origins`), and soft
    # labels (float [N, C], rows summing to 1: crowd votes; one-hot for hard-labelled faces) where any part has them.
    origin: torch.Tensor | None = field(default=None, repr=False)
    origins: tuple[str, ...] = ()
    shares: tuple[float, ...] = ()   # each part's share of the training batches (the mix's weights)
    soft: torch.Tensor | None = field(default=None, repr=False)
    # Faces that already wear their occlusion (a part with `wear`, e.g. masks painted on their photos), bool [N]:
    # a training condition shows them as they are instead of cutting another hole.
    worn: torch.Tensor | None = field(default=None, repr=False)
    # Bare faces that carry a hole of their own (a part with `holes`: the pixels a mask painted on the face's
    # photo covers), uint8 [N, 48, 48], all 0 where a face has none: generators learn to fill that shape too.
    holes: torch.Tensor | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def split(self, name: str) -> "Faces":
        """The faces of one split (train, val, test), or all of them."""
        if name == "all":
            return self
        if name not in SPLITS:
            raise UnveilError(f"unknown split {name!r}; choose one of {', '.join(SPLIT_CHOICES)}")
        keep = self.splits == SPLITS.index(name)
        index = keep.nonzero().squeeze(1)
        return self.select(index)

    def select(self, index: torch.Tensor) -> "Faces":
        """The faces at `index` (a 1-D long tensor), ids kept in step."""
        index = index.to(self.labels.device)
        idx = index.tolist()
        return replace(self, images=self.images[index], labels=self.labels[index],
                       splits=self.splits[index], ids=[self.ids[i] for i in idx],
                       origin=_take(self.origin, index), soft=_take(self.soft, index), worn=_take(self.worn, index),
                       holes=_take(self.holes, index))

    def to(self, device: torch.device | str) -> "Faces":
        return replace(self, images=self.images.to(device), labels=self.labels.to(device),
                       splits=self.splits.to(device), origin=_moved(self.origin, device),
                       soft=_moved(self.soft, device), worn=_moved(self.worn, device),
                       holes=_moved(self.holes, device))

    def part(self, name: str) -> "Faces":
        """The faces of one part of a data mix, by its name (`origins`)."""
        if name not in self.origins:
            raise UnveilError(f"{self.source}: no part named {name!r}; parts: {', '.join(self.origins) or 'none'}")
        return self.select((self.origin == self.origins.index(name)).nonzero().squeeze(1))

    def float_images(self) -> torch.Tensor:
        """Images as float [N, 1, 48, 48] in [0, 1], the input convention of every model."""
        return self.images.unsqueeze(1).float().div_(255.0)

    def counts(self) -> dict[str, dict[str, int]]:
        """Number of faces per split and class (splits with no faces are left out)."""
        table = torch.zeros(len(SPLITS), len(CLASSES), dtype=torch.long)
        table.index_put_((self.splits.long().cpu(), self.labels.cpu()),
                         torch.ones(len(self), dtype=torch.long), accumulate=True)
        out = {}
        for s, name in enumerate(SPLITS):
            if table[s].sum() > 0:
                out[name] = {c: int(table[s, k]) for k, c in enumerate(CLASSES)}
        return out


def _take(tensor: torch.Tensor | None, index: torch.Tensor) -> torch.Tensor | None:
    return None if tensor is None else tensor[index.to(tensor.device)]


def _moved(tensor: torch.Tensor | None, device: torch.device | str) -> torch.Tensor | None:
    return None if tensor is None else tensor.to(device)


def epoch_order(faces: Faces, draws: int, generator: torch.Generator) -> torch.Tensor:
    """The faces an epoch shows, `draws` indices on the generator's device: whole permutations of the faces
    (each face once per lap), or for a data mix, each part drawn with its share of the batches (with
    replacement, spread evenly over the part's faces)."""
    n, device = len(faces), generator.device
    if faces.origin is None or len(faces.origins) <= 1:
        return torch.cat([torch.randperm(n, device=device, generator=generator) for _ in range(-(-draws // n))])
    origin = faces.origin.to(device)
    counts = torch.bincount(origin, minlength=len(faces.shares)).clamp_min(1).float()
    shares = torch.tensor(faces.shares, device=device)
    return torch.multinomial((shares / counts)[origin], draws, replacement=True, generator=generator)
