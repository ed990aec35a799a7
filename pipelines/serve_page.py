"""The one page `unveil serve` shows: upload a photo or a video (or take a webcam snapshot), pick the hole
and the inpainter, and see the boxes, each face's crops and the readings as bars. Plain HTML and
JavaScript, no external files: it works with nothing downloaded."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Unveil</title>
<style>
 body { font: 15px system-ui, sans-serif; margin: 24px; max-width: 1100px; color: #222 }
 form, .face { display: flex; gap: 14px; align-items: center; flex-wrap: wrap; margin: 12px 0 }
 .crop { text-align: center; font-size: 12px }  .crop img { width: 144px; image-rendering: pixelated }
 .bars { font-size: 12px; width: 260px }  .bar { display: flex; align-items: center; gap: 6px }
 .bar span { width: 62px }  .bar div { background: #4678be; height: 10px }
 #error { color: #b3261e; font-weight: 600 }  img.photo, video { max-width: 100% }
</style></head><body>
<h1>Unveil: expressions on masked faces</h1>
<form id="form">
 <input type="file" id="file" name="file" accept="image/*,video/*">
 <button type="button" id="camera">Take one from the webcam</button>
 <label>hole <select name="hole">{{HOLES}}</select></label>
 <label>inpainter <select name="inpainter">{{INPAINTERS}}</select></label>
 <button type="submit">Read</button> <span>(at most {{MAX_MB}} MiB)</span>
</form>
<video id="live" autoplay playsinline hidden width="320"></video>
<p id="status"></p><p id="error"></p><div id="results"></div>
<script>
const form = document.getElementById("form"), results = document.getElementById("results");
const statusLine = document.getElementById("status"), errorLine = document.getElementById("error");
let snapshot = null;
document.getElementById("camera").onclick = async () => {
  const live = document.getElementById("live");
  if (!live.srcObject) { live.srcObject = await navigator.mediaDevices.getUserMedia({video: true}); live.hidden = false; return; }
  const canvas = document.createElement("canvas");
  canvas.width = live.videoWidth; canvas.height = live.videoHeight;
  canvas.getContext("2d").drawImage(live, 0, 0);
  snapshot = await new Promise(done => canvas.toBlob(done, "image/png"));
  form.requestSubmit();
};
document.getElementById("file").onchange = () => { snapshot = null; };
form.onsubmit = async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  if (snapshot) data.set("file", snapshot, "webcam.png");
  if (!data.get("file") || !data.get("file").size) { errorLine.textContent = "Choose a photo or a video first."; return; }
  statusLine.textContent = "Reading..."; errorLine.textContent = ""; results.innerHTML = "";
  const response = await fetch("/api/predict", {method: "POST", body: data});
  const answer = await response.json();
  statusLine.textContent = "";
  if (answer.error) { errorLine.textContent = answer.error; return; }
  errorLine.textContent = (answer.errors || []).join(" ");
  answer.kind === "video" ? showVideo(answer) : showPhoto(answer);
};
function bars(probabilities) {
  return Object.entries(probabilities).map(([name, p]) =>
    `<div class="bar"><span>${name}</span><div style="width:${Math.round(p * 150)}px"></div>${p.toFixed(2)}</div>`).join("");
}
function showPhoto(answer) {
  let html = answer.picture ? `<img class="photo" src="${answer.picture}" alt="the photo with its faces boxed">` : "";
  answer.faces.forEach((face, k) => {
    const yaw = face.pose ? `, yaw ${face.pose.yaw > 0 ? "+" : ""}${face.pose.yaw}°` : "";
    html += `<h3>face ${k + 1} (hole: ${face.hole}${yaw})</h3><div class="face" data-face="${k + 1}">`;
    for (const crop of ["untouched", "occluded", "reconstructed"])
      html += `<div class="crop"><img src="${face.crops[crop]}" alt="${crop}"><br>${crop}</div>`;
    const read = `${face.reading.class} ${face.reading.probability.toFixed(2)}`;
    html += face.reading.reliable === false   // turned away: no headline reading, only what was read, marked
      ? `<p class="reading turned" data-face="${k + 1}"><b>Turned away: unreliable</b> <small>(read ${read}; unveil serve --max-yaw keeps turned faces)</small></p>`
      : `<p class="reading" data-face="${k + 1}"><b>Reading: ${read}</b> <small>(${face.reading.how})</small></p>`;
    for (const [reading, title] of [["one_reading", "the one reading"], ["reconstructed", "judge, reconstruction"], ["untouched", "judge, untouched"],
                                    ["upper_half_reader", "upper-half reader, occluded"]])
      html += `<div class="bars" data-reading="${reading}"><b>${title}</b>${bars(face.readings[reading])}</div>`;
    html += "</div>";
  });
  results.innerHTML = html || "<p>No face found.</p>";
}
function showVideo(answer) {
  results.innerHTML = `<p>${answer.frames} frames, face ids ${answer.faces.join(", ") || "none"}, ${answer.fps} fps</p>
    <video controls src="${answer.video}"></video>` + (answer.timeline ? `<img class="photo" src="${answer.timeline}" alt="timeline">` : "");
}
</script></body></html>
"""
