"""`unveil serve`'s page through FastAPI's TestClient: the sample photo read as `predict` reads it,
named errors for files that are neither photos nor videos, the upload limit, a video, and two requests
at once each getting their own results."""

from __future__ import annotations

import base64
import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from unveil.photo.masks import wear_mask
from unveil.pipelines.predict import Predictor, sample_photo
from unveil.pipelines.serve import create_app, inpainter_choices
from unveil.pipelines.video import sample_clip

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(max_bytes=2**20))


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    """The sample photo bare and wearing a synthetic mask, as PNG files."""
    rgb = sample_photo()[0]
    face = max(Predictor(hole="landmarks").detector.detect(rgb), key=lambda f: f.score)
    return {"bare.png": png(rgb), "masked.png": png(wear_mask(rgb, face, ("surgical",), seed=0)[0])}


def png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def post(client, name: str, data: bytes, **form) -> tuple[int, dict]:
    response = client.post("/api/predict", files={"file": (name, data)}, data=form)
    return response.status_code, response.json()


def decoded(url: str) -> Image.Image:
    head, body = url.split(",", 1)
    assert head == "data:image/png;base64"
    return Image.open(io.BytesIO(base64.b64decode(body)))


def test_the_page_offers_every_hole_and_only_shipped_inpainters(client):
    page = client.get("/").text
    for name in ["auto", "landmarks", "lower-half", *inpainter_choices()]:
        assert f'<option value="{name}">' in page
    assert "inpainter_unet" in inpainter_choices() and "mean_face" not in inpainter_choices()


def test_a_photo_reads_as_predict_reads_it(client, photos):
    status, answer = post(client, "masked.png", photos["masked.png"], hole="landmarks", inpainter="inpainter_unet")
    assert status == 200 and answer["kind"] == "photo" and len(answer["faces"]) == 1
    face = answer["faces"][0]
    assert {name: decoded(url).size for name, url in face["crops"].items()} == {
        "untouched": (48, 48), "occluded": (48, 48), "reconstructed": (48, 48)}
    assert decoded(answer["picture"]).size[0] > 48
    expected = Predictor(hole="landmarks").predict(np.array(Image.open(io.BytesIO(photos["masked.png"])))).faces[0]
    for reading, probabilities in face["readings"].items():
        assert abs(sum(probabilities.values()) - 1) < 2e-3
        assert probabilities == expected.readings[reading].probabilities


def test_files_that_are_neither_photo_nor_video_get_a_message(client):
    status, answer = post(client, "notes.txt", b"not a picture")
    assert status == 400 and answer["error"].startswith("notes.txt: neither a photo nor a video")
    status, answer = post(client, "clip.mp4", b"not a video" * 100)
    assert status == 400 and answer["error"].startswith("clip.mp4: cannot read it as a video")
    status, answer = post(client, "big.png", b"\0" * (2**20 + 1))
    assert status == 413 and "larger than the 1 MiB" in answer["error"]
    status, answer = post(client, "x.png", b"", hole="everything")
    assert status == 400 and "unknown hole 'everything'" in answer["error"]


def test_two_requests_at_once_get_their_own_results(client, photos):
    alone = {name: post(client, name, data, hole="auto")[1] for name, data in photos.items()}
    with ThreadPoolExecutor(2) as pool:
        together = dict(zip(photos, pool.map(lambda item: post(client, *item, hole="auto")[1], photos.items())))
    assert together == alone
    assert alone["bare.png"]["faces"][0]["hole"] != alone["masked.png"]["faces"][0]["hole"]


def test_a_video_returns_the_annotated_video_and_the_timeline(client, tmp_path):
    clip = sample_clip(tmp_path / "clip.mp4", Predictor(hole="lower-half").detector, seconds=0.8, fps=10)
    status, answer = post(client, "clip.mp4", clip.read_bytes(), hole="lower-half", inpainter="telea")
    assert status == 200 and answer["kind"] == "video" and answer["frames"] == 8 and answer["faces"] == [1]
    assert answer["video"].startswith("data:video/mp4;base64,") and decoded(answer["timeline"]).size[0] > 0
