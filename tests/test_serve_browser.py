"""`unveil serve` in a real browser: headless Chromium loads the page from a live server, a masked photo
is uploaded through the file input, and the page shows the boxed photo, each face's three crops and the
readings as bars; a file that is not a photo gets its message on the page.

Needs Chromium and its driver (Debian: `apt-get install chromium chromium-driver`; `.ci/run` installs
them and sets UNVEIL_BROWSER_TEST=1, which turns a missing browser into a failure instead of a skip)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image

from unveil.classes import CLASSES
from unveil.photo.masks import wear_mask
from unveil.pipelines.predict import Predictor, sample_photo

REQUIRED = os.environ.get("UNVEIL_BROWSER_TEST") == "1"
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
if not (BROWSER and DRIVER):
    if REQUIRED:
        raise RuntimeError("UNVEIL_BROWSER_TEST=1 but Chromium or chromedriver is not installed")
    pytest.skip("needs Chromium and chromedriver (apt-get install chromium chromium-driver)", allow_module_level=True)

from selenium import webdriver  # noqa: E402  (the dev extra)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as seen  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def page_url():
    import uvicorn

    from unveil.pipelines.serve import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1600"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def masked_photo(tmp_path_factory):
    rgb = sample_photo()[0]
    face = max(Predictor(hole="landmarks").detector.detect(rgb), key=lambda f: f.score)
    path = tmp_path_factory.mktemp("upload") / "masked.png"
    Image.fromarray(wear_mask(rgb, face, ("surgical",), seed=0)[0]).save(path)
    return path


def upload(browser, url: str, path) -> None:
    browser.get(url)
    browser.find_element(By.ID, "file").send_keys(str(path))
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def test_a_masked_photo_uploaded_in_the_browser_shows_its_face_and_readings(browser, page_url, masked_photo):
    upload(browser, page_url, masked_photo)
    face = WebDriverWait(browser, 120).until(seen.presence_of_element_located((By.CSS_SELECTOR, ".face")))
    assert browser.find_element(By.CSS_SELECTOR, "img.photo").get_attribute("naturalWidth") != "0"
    crops = face.find_elements(By.CSS_SELECTOR, ".crop img")
    assert [c.get_attribute("alt") for c in crops] == ["untouched", "occluded", "reconstructed"]
    assert all(int(c.get_attribute("naturalWidth")) == 48 for c in crops)  # decoded images, not broken links
    readings = {b.get_attribute("data-reading"): b for b in face.find_elements(By.CSS_SELECTOR, ".bars")}
    assert set(readings) == {"one_reading", "reconstructed", "untouched", "upper_half_reader"}
    answer = face.find_element(By.CSS_SELECTOR, ".reading").text   # the one reading, before the bars
    assert answer.startswith("Reading: ") and answer.split()[1] in CLASSES
    assert "the reader and the judge on the reconstruction" in answer   # how it was reached, with a hole
    shares = [float(bar.text.split()[-1]) for bar in readings["reconstructed"].find_elements(By.CSS_SELECTOR, ".bar")]
    assert len(shares) == 7 and np.isclose(sum(shares), 1, atol=0.02)
    heading = browser.find_element(By.CSS_SELECTOR, "h3").text   # "face 1 (hole: auto, yaw +4.7°)": not "no mask found"
    assert heading.startswith("face 1 (hole: auto, yaw ") and heading.endswith("°)")
    assert browser.find_element(By.ID, "error").text == ""


def test_a_file_that_is_not_a_photo_gets_a_message_on_the_page(browser, page_url, tmp_path):
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    upload(browser, page_url, notes)
    error = WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "error").text)
    assert "notes.png" in error and browser.find_elements(By.CSS_SELECTOR, ".face") == []
