// Reading back what a prompt file holds, to compare with the bytes an ALSA file device wrote.

/** The PCM samples of a WAV file (its `data` chunk). */
export function pcmOf(wav: Buffer): Buffer {
  let at = 12;
  while (at + 8 <= wav.length) {
    const id = wav.toString("ascii", at, at + 4);
    const size = wav.readUInt32LE(at + 4);
    if (id === "data") return wav.subarray(at + 8, Math.min(wav.length, at + 8 + size));
    at += 8 + size + (size % 2);
  }
  throw new Error("no data chunk");
}
