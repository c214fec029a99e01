// A random source for ulid ids. ulid's default asks the CSPRNG once per character (16 calls an id); drawing
// the same bytes from a pool the CSPRNG refills keeps their quality at a fraction of the cost. Ids are made
// for every journaled event on the hub and for every timeline entry, alert and forward at the relay.
import { randomFillSync } from "node:crypto";

const pool = Buffer.alloc(4096);
let pos = pool.length;

/** A number in [0, 1) from the pool (ulid's PRNG shape: it needs one byte's worth per character). */
export function pooledRandom(): number {
  if (pos >= pool.length) {
    randomFillSync(pool);
    pos = 0;
  }
  return (pool[pos++] as number) / 256;
}
