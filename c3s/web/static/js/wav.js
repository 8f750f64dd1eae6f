// Microphone recording as 16-bit mono WAV, with the server-clock time of its first sample.
// WebAudio (not MediaRecorder) because MediaRecorder gives compressed audio whose start time
// is unknown to a few tens of ms; the sound locator needs raw samples and a known start.

/** Record `seconds` of raw microphone audio; resolves {wav: Blob, startMs, sampleRate}. */
export async function recordWav(clock, seconds, sampleRate = undefined) {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  let context;
  try {
    context = new AudioContext(sampleRate ? { sampleRate } : {});
  } catch {
    context = new AudioContext(); // this device cannot resample to the asked rate
  }
  try {
    const source = context.createMediaStreamSource(stream);
    // ScriptProcessor is deprecated but is the one raw-sample tap every phone browser has.
    const tap = context.createScriptProcessor(4096, 1, 1);
    const chunks = [];
    let startMs = null;
    const wanted = Math.round(seconds * context.sampleRate);
    let total = 0;
    const done = new Promise((resolve) => {
      tap.onaudioprocess = (event) => {
        if (startMs === null) {
          // Map the buffer's context time to the server clock through performance.now().
          const stamp = context.getOutputTimestamp();
          const perfMs = stamp.performanceTime + (event.playbackTime - stamp.contextTime) * 1000
            - (context.baseLatency || 0) * 1000;
          startMs = perfMs + performance.timeOrigin + (clock.offsetMs ?? 0);
        }
        chunks.push(new Float32Array(event.inputBuffer.getChannelData(0)));
        total += event.inputBuffer.length;
        if (total >= wanted) resolve();
      };
    });
    source.connect(tap);
    tap.connect(context.destination);
    await done;
    source.disconnect();
    tap.disconnect();
    return { wav: encodeWav(chunks, context.sampleRate), startMs, sampleRate: context.sampleRate };
  } finally {
    stream.getTracks().forEach((track) => track.stop());
    await context.close();
  }
}

/** Float32 chunks in [-1, 1] to a 16-bit PCM mono WAV blob. */
export function encodeWav(chunks, sampleRate) {
  const n = chunks.reduce((sum, c) => sum + c.length, 0);
  const buffer = new ArrayBuffer(44 + n * 2);
  const view = new DataView(buffer);
  const text = (offset, s) => [...s].forEach((ch, i) => view.setUint8(offset + i, ch.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + n * 2, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, sampleRate, true); view.setUint32(28, sampleRate * 2, true);
  view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, n * 2, true);
  let offset = 44;
  for (const chunk of chunks) {
    for (const v of chunk) {
      view.setInt16(offset, Math.max(-1, Math.min(1, v)) * 0x7fff, true);
      offset += 2;
    }
  }
  return new Blob([buffer], { type: "audio/wav" });
}
