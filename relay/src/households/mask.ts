// Masking a household for what leaves the relay (the ledger, a printed commissioning report filed at the
// street office): the elder's family name and the building stay, so the home can be recognised by whoever
// knows it; the given name and the flat do not. Street and community are public divisions, shown as is.

/** 张三丰 → 张**, "Wang Fang" → "W**": the first character and a fixed ** (which does not tell the name's length). */
export function maskName(name: string): string {
  const first = [...name.trim()][0];
  return first ? `${first}**` : "**";
}

/**
 * The road and building, not the flat: the text up to and including the first number (幸福路12弄), every later
 * digit as * (幸福路12弄*号***室). An address without a number shows only its first characters.
 */
export function maskAddress(address: string): string {
  const a = address.trim();
  const m = /\d+/.exec(a);
  if (!m) {
    const chars = [...a];
    const keep = Math.min(4, Math.floor(chars.length / 2));
    return chars.slice(0, keep).join("") + "*".repeat(Math.max(1, chars.length - keep));
  }
  const end = m.index + m[0].length;
  return a.slice(0, end) + a.slice(end).replace(/\d/g, "*");
}
