// Drawing a scene on a canvas: its outline, anchors, pixels; and the crowd render of a frame
// (each placed pixel a square of its colour at its place, so sparse areas show as they will).

/** Scale that fits a `width` x `height` scene into the canvas, with a margin. */
export function sceneTransform(canvas, width, height, margin = 10) {
  const scale = Math.min((canvas.width - 2 * margin) / width, (canvas.height - 2 * margin) / height);
  return { scale, x: (sx) => margin + sx * scale, y: (sy) => margin + sy * scale };
}

/** Radius of `count` dots spread over a `width` x `height` scene: a third of their spacing,
 * within [least, 6] canvas pixels. */
export function dotRadius(t, width, height, count, least = 2) {
  return Math.max(least, Math.min(6, t.scale * Math.sqrt((width * height) / Math.max(1, count)) / 3));
}

/** Clear the canvas and outline a `width` x `height` scene on it; returns its 2-D context and
 * the scene's transform. */
export function drawSceneOutline(canvas, width, height) {
  const g = canvas.getContext("2d");
  const t = sceneTransform(canvas, width, height);
  g.fillStyle = "#111";
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.strokeStyle = "#666";
  g.strokeRect(t.x(0), t.y(0), width * t.scale, height * t.scale);
  return { g, t };
}

/** The map: outline, placed (green) and excluded (red) phones, anchors; `labels` numbers the dots. */
export function drawSceneMap(canvas, scene, pixels, { labels = false } = {}) {
  const { g, t } = drawSceneOutline(canvas, scene.width, scene.height);
  const r = dotRadius(t, scene.width, scene.height, pixels.length);
  g.font = "10px system-ui, sans-serif";
  for (const p of pixels) {
    if (p.x == null) continue;
    g.fillStyle = p.status === "excluded" ? "#ff6b6b" : "#5cf28f";
    g.beginPath();
    g.arc(t.x(p.x), t.y(p.y), r, 0, 2 * Math.PI);
    g.fill();
    if (labels) {
      g.fillStyle = "#ffffff";
      g.fillText(String(p.number), t.x(p.x) + r + 1, t.y(p.y) - r);
    }
  }
  g.fillStyle = "#ffd60a";
  g.font = "12px system-ui, sans-serif";
  for (const a of scene.anchors || []) {
    g.fillRect(t.x(a.x) - 4, t.y(a.y) - 4, 8, 8);
    g.fillText(a.key, t.x(a.x) + 6, t.y(a.y) - 6);
  }
}

/** The phone drawn nearest canvas point (x, y), within a few canvas pixels of its dot; or null. */
export function pixelAt(canvas, scene, pixels, x, y) {
  const t = sceneTransform(canvas, scene.width, scene.height);
  const reach = dotRadius(t, scene.width, scene.height, pixels.length) + 5;
  let best = null;
  let bestD = reach;
  for (const p of pixels) {
    if (p.x == null) continue;
    const d = Math.hypot(t.x(p.x) - x, t.y(p.y) - y);
    if (d <= bestD) { best = p; bestD = d; }
  }
  return best;
}

/** Unpack a C3CM colour map: 12-byte header (magic, version, count), then RGB per pixel. */
export function unpackColorMap(buffer) {
  const view = new DataView(buffer);
  const magic = String.fromCharCode(...new Uint8Array(buffer, 0, 4));
  if (magic !== "C3CM") throw new Error("not a C3S colour map");
  const count = view.getUint32(8, true);
  return { version: view.getUint8(4), count, rgb: new Uint8Array(buffer, 12, count * 3) };
}

/** Draw how the crowd renders a frame: layout {x, y, width, height} and its colour map. */
export function drawCrowdRender(canvas, layout, colorMap) {
  const g = canvas.getContext("2d");
  const t = sceneTransform(canvas, layout.width, layout.height, 0);
  g.fillStyle = "#000";
  g.fillRect(0, 0, canvas.width, canvas.height);
  const n = Math.min(colorMap.count, layout.x.length);
  // Each phone lights a square about its share of the scene, at least one canvas pixel.
  const side = Math.max(1, t.scale * Math.sqrt((layout.width * layout.height) / Math.max(1, n)) * 0.8);
  for (let i = 0; i < n; i += 1) {
    const [r, gr, b] = colorMap.rgb.subarray(i * 3, i * 3 + 3);
    g.fillStyle = `rgb(${r},${gr},${b})`;
    g.fillRect(t.x(layout.x[i]) - side / 2, t.y(layout.y[i]) - side / 2, side, side);
  }
}
