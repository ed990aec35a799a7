"""`unveil serve`: one local page to try the shipped models on a photo, a webcam snapshot or a video.

    app = create_app()                       # FastAPI; `unveil serve` runs it with uvicorn on 127.0.0.1
    POST /api/predict  file=<photo|video>, hole=auto|landmarks|lower-half, inpainter=<shipped or classical>

A photo goes through `Predictor.predict`, a video through `VideoReader`: the page shows what `unveil
predict` computes, nothing else. Each request works in its own temporary folder and gets everything back
in its response (pictures as data URLs), so nothing is kept between requests and two people never see
each other's results. Only the shipped models run; uploads over `max_bytes` are refused.

(No `from __future__ import annotations` here: FastAPI reads the endpoint's annotations at run time.)
"""

import asyncio
import base64
import tempfile
import threading
from pathlib import Path

from unveil.errors import UnveilError
from unveil.inpaint import BASELINES
from unveil.photo.read import read_photo
from unveil.shipped import shipped_inpainters

from .predict import CROPS, HOLES, INPAINTER, MAX_YAW, Predictor
from .serve_page import PAGE
from .video import VideoOptions, VideoReader
from .video_io import VIDEO_EXTENSIONS, VideoFile, is_video

MAX_BYTES = 20 * 2**20          # 20 MiB a file
BODY_TIMEOUT = 60.0             # s an upload may stall (no byte arriving) before it is answered 408


def inpainter_choices() -> list[str]:
    """The shipped generators, predict's default first (the page's default), then the classical fills that
    need no training faces."""
    generators = sorted((p.stem for p in shipped_inpainters()), key=lambda name: name != INPAINTER)
    return generators + [n for n in BASELINES.names() if n != "mean_face"]


class Models:
    """One `Predictor` per (hole, inpainter), loaded on first use, and one lock: requests run the models
    one at a time (two at once on two cores would only slow both)."""

    def __init__(self, device: str = "cpu", max_yaw: float = MAX_YAW):
        self.device, self.max_yaw, self.lock, self.loaded = device, max_yaw, threading.Lock(), {}

    def predictor(self, hole: str, inpainter: str) -> Predictor:
        if hole not in HOLES:
            raise UnveilError(f"unknown hole {hole!r}; choose one of {', '.join(HOLES)}")
        if inpainter not in inpainter_choices():
            raise UnveilError(f"unknown inpainter {inpainter!r}; choose one of {', '.join(inpainter_choices())}")
        key = (hole, inpainter)
        if key not in self.loaded:
            self.loaded[key] = Predictor(inpainter, hole, device=self.device, max_yaw=self.max_yaw)
        return self.loaded[key]


def create_app(device: str = "cpu", max_bytes: int = MAX_BYTES, body_timeout: float = BODY_TIMEOUT,
               max_yaw: float = MAX_YAW):
    from fastapi import FastAPI, File, Form, UploadFile
    from fastapi.responses import HTMLResponse, JSONResponse

    app, models = FastAPI(title="Unveil", docs_url=None, redoc_url=None), Models(device, max_yaw)
    app.add_middleware(BodyTimeout, seconds=body_timeout)
    page = PAGE.replace("{{HOLES}}", _options(HOLES)).replace("{{INPAINTERS}}", _options(inpainter_choices()))
    page = page.replace("{{MAX_MB}}", f"{max_bytes / 2**20:g}")

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.post("/api/predict")
    def predict(file: UploadFile = File(...), hole: str = Form("auto"), inpainter: str = Form("inpainter_unet")):
        name = Path(file.filename or "upload").name
        data = file.file.read(max_bytes + 1)
        if len(data) > max_bytes:
            return JSONResponse({"error": f"{name}: larger than the {max_bytes / 2**20:g} MiB this page accepts"}, 413)
        try:
            with models.lock:
                return answer(models.predictor(hole, inpainter), name, data)
        except UnveilError as exc:
            return JSONResponse({"error": str(exc)}, 400)

    return app


class BodyTimeout:
    """ASGI middleware: a request whose body stalls for `seconds` (no byte arriving) is answered 408 and
    ended, instead of holding its connection open forever."""

    def __init__(self, app, seconds: float):
        self.app, self.seconds = app, seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        answered = received = False

        async def timed_receive():
            nonlocal answered, received
            if received:  # the body is whole: a wait for the client leaving may last as long as the work
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.seconds)
            except asyncio.TimeoutError:
                if not answered:
                    from fastapi.responses import JSONResponse

                    answered = True
                    error = f"the upload stalled for {self.seconds:g} s; send it again"
                    await JSONResponse({"error": error}, 408, headers={"connection": "close"})(scope, receive, send)
                return {"type": "http.disconnect"}  # the app stops reading; its own answer is dropped
            received = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def guarded_send(message):
            nonlocal answered
            if not answered:
                answered = message["type"] == "http.response.body" and not message.get("more_body", False)
                await send(message)

        await self.app(scope, timed_receive, guarded_send)


def answer(predictor: Predictor, name: str, data: bytes) -> dict:
    """The page's JSON for one upload, computed in a folder of its own that is gone afterwards. The upload's
    name is only shown, never used as a path: the copy is `upload`, with the suffix only of a known video."""
    with tempfile.TemporaryDirectory(prefix="unveil-serve-") as tmp:
        suffix = Path(name).suffix.lower()
        upload = Path(tmp) / ("upload" + (suffix if suffix in VIDEO_EXTENSIONS else ""))
        upload.write_bytes(data)
        try:
            return video_answer(predictor, upload, name) if is_video(upload) else photo_answer(predictor, upload, name)
        except UnveilError as exc:   # the message names the upload as the user called it, not our copy
            raise UnveilError(str(exc).replace(str(upload), name)) from None


def photo_answer(predictor: Predictor, upload: Path, name: str) -> dict:
    rgb, _ = read_photo(upload)  # predict's own checks: a bomb, a truncated or an empty file each named
    result = predictor.predict(rgb, picture=upload.with_suffix(".result.png"), name=name)
    faces = [_face_answer(f) for f in result.faces]
    picture = _data_url(Path(result.picture).read_bytes(), "image/png") if result.picture else None
    return {"kind": "photo", "source": name, "picture": picture, "faces": faces, "errors": result.errors}


def _face_answer(face) -> dict:
    """One face for the page: predict's reading and pose, the box, the hole, the crops and every reading."""
    record = face.to_json()
    return {"reading": record["reading"], "pose": record["pose"], "box": face.box, "hole": face.hole,
            "crops": {c: _png_url(face.crops[c]) for c in CROPS},
            "readings": {r: v.probabilities for r, v in face.readings.items()}}


def video_answer(predictor: Predictor, upload: Path, name: str) -> dict:
    with VideoFile(upload) as video:
        result = VideoReader(predictor, VideoOptions()).run(video, upload.with_name("clip"), progress=False)
    outputs = result.outputs
    return {"kind": "video", "source": name, "frames": result.frames, "faces": result.face_ids,
            "fps": round(result.fps, 1), "video": _data_url(Path(outputs["video"]).read_bytes(), "video/mp4"),
            "timeline": _data_url(Path(outputs["timeline_png"]).read_bytes(), "image/png")
            if "timeline_png" in outputs else None,
            "errors": [e.replace(str(upload), name) for e in result.errors]}


def _png_url(gray) -> str:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, format="PNG")
    return _data_url(buffer.getvalue(), "image/png")


def _data_url(data: bytes, kind: str) -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def _options(names) -> str:
    return "".join(f'<option value="{n}">{n}</option>' for n in names)
