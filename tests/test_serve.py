"""`unveil serve`'s page through FastAPI's TestClient: the sample photo read as `predict` reads it,
named errors for files that are neither photos nor videos, the upload limit, a video, and two requests
at once each getting their own results."""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from test_reliability import one_line_error

from unveil.errors import DataError

from unveil.photo.masks import wear_mask
from unveil.photo.read import read_photo
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
    assert status == 400 and answer["error"].startswith("notes.txt: cannot read it as an image")
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


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int) -> bytes:
    """A PNG announcing `width` x `height` RGB pixels, with almost no data."""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_each_unreadable_photo_gets_the_reason_predict_gives(client, photos, tmp_path):
    jpeg = io.BytesIO()
    Image.open(io.BytesIO(photos["bare.png"])).save(jpeg, "JPEG")
    files = {"bomb.png": png_header(20_000, 20_000), "cut.jpg": jpeg.getvalue()[: len(jpeg.getvalue()) // 2],
             "zero.png": png_header(0, 0), "empty.png": b""}
    reasons = set()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError) as predicted:  # what predict says of the same file
            read_photo(tmp_path / name)
        status, answer = post(client, name, data)
        assert status == 400 and answer["error"] == str(predicted.value).replace(str(tmp_path / name), name)
        reasons.add(answer["error"].replace(name, "NAME"))
    assert len(reasons) == 4, reasons  # a bomb, a truncated, an unidentified and an empty file: four reasons


def raw_post(client, filename: bytes, data: bytes):
    """An upload whose file name is sent byte for byte (an HTTP client would escape a NUL)."""
    body = (b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--b0undary--\r\n")
    return client.post("/api/predict", content=body, headers={"content-type": "multipart/form-data; boundary=b0undary"})


@pytest.mark.parametrize("filename", [b"a.jp\x00g", b"a." + b"x" * 300, b"../../etc/a.png", b"a.png/."])
def test_upload_names_never_reach_the_file_system(client, filename):
    response = raw_post(client, filename, png(np.full((64, 64, 3), 90, np.uint8)))
    assert response.status_code == 200, response.text
    assert response.json()["errors"] == [f"{response.json()['source']}: no face found (faces of 20 px and more are "
                                         f"searched)"]


def test_an_upload_that_stalls_is_answered_408_and_ended():
    """The ASGI app driven directly: the body's first part arrives, then nothing more, ever."""
    app, sent = create_app(body_timeout=0.2), []
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/predict", "raw_path": b"/api/predict", "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"multipart/form-data; boundary=b0undary"), (b"content-length", b"9999")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000)}
    parts = [{"type": "http.request", "body": b"--b0undary\r\n", "more_body": True}]

    async def receive():
        if parts:
            return parts.pop()
        await asyncio.Event().wait()  # a client that never sends the rest

    async def send(message):
        sent.append(message)

    asyncio.run(asyncio.wait_for(app(scope, receive, send), 10))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 408
    assert b"stalled" in sent[1]["body"] and len(sent) == 2  # the app's own late answer is not sent


def test_a_port_out_of_range_is_one_line(capsys):
    assert "a port is a number from 1 to 65535, got 70000" in one_line_error(["serve", "--port", "70000"], capsys)


def test_a_turned_face_has_its_pose_and_no_headline_reading(photos):
    """`serve --max-yaw 0`: every face is turned away; the answer keeps its pose and readings and marks the
    reading unreliable, and the page shows "Turned away" where the headline reading would be."""
    client = TestClient(create_app(max_yaw=0.0))
    status, answer = post(client, "bare.png", photos["bare.png"], hole="lower-half", inpainter="inpainter_unet")
    face = answer["faces"][0]
    assert status == 200 and face["reading"]["reliable"] is False and "turned away" in face["reading"]["note"]
    assert set(face["pose"]) == {"yaw", "pitch", "roll"} and face["readings"]["one_reading"]
    assert "Turned away: unreliable" in client.get("/").text
    _, facing = post(TestClient(create_app()), "bare.png", photos["bare.png"], hole="lower-half",
                     inpainter="inpainter_unet")
    assert facing["faces"][0]["reading"]["reliable"] is True
