// The board itself: every home whose hub needs attention, most urgent first, with the address masked. It is
// computed once for everybody and kept for a few seconds, so a room of consoles polling every few seconds
// costs the store one computation per interval; each caller then sees only the homes on their streets.
import type { Kysely } from "kysely";
import { maskAddress } from "../../households/mask.js";
import { inStreetScope, type StreetScope } from "../../households/street-scope.js";
import type { LoopDb } from "../../store/closed-loop-schema.js";
import { loadBoardFacts } from "./load.js";
import { compareHomes, homeRank, hubProblems, urgencyOf, URGENCIES } from "./problems.js";
import type { Board, BoardHome } from "./schemas.js";

/** How long one computation serves every console. */
export const BOARD_TTL_MS = 3000;

interface Computed {
  at: number;
  homes: BoardHome[];
}

/** Every home with a problem as of `now`, sorted (pure apart from the read). */
export async function computeBoard(db: Kysely<LoopDb>, now: number): Promise<BoardHome[]> {
  const out: BoardHome[] = [];
  for (const h of await loadBoardFacts(db)) {
    const problems = hubProblems(h.facts, now);
    const worst = problems[0];
    if (!worst) continue;
    out.push({
      hub: h.facts.hub,
      homeMasked: h.home ? maskAddress(h.home.address) : null,
      street: h.home?.street ?? null,
      community: h.home?.community ?? null,
      urgency: urgencyOf(worst.kind),
      rank: homeRank({ hub: h.facts.hub, problems }),
      hubOnline: h.facts.online,
      lastSeenAt: h.lastSeenAt,
      problems: problems.map((p) => ({ ...p, urgency: urgencyOf(p.kind) })),
    });
  }
  return out.sort(compareHomes);
}

export class BoardCache {
  private last: Computed | undefined;
  private running: Promise<Computed> | undefined;

  constructor(
    private readonly db: Kysely<LoopDb>,
    private readonly now: () => number,
    private readonly ttlMs = BOARD_TTL_MS,
  ) {}

  /** The board as of at most ttlMs ago; callers arriving during a computation share it. */
  async current(): Promise<Computed> {
    const now = this.now();
    if (this.last && now - this.last.at < this.ttlMs && now >= this.last.at) return this.last;
    this.running ??= computeBoard(this.db, now)
      .then((homes) => (this.last = { at: now, homes }))
      .finally(() => (this.running = undefined));
    return this.running;
  }
}

/** What one caller sees: the homes on their streets, at most `limit`, with the counts of all of them. */
export function boardFor(c: Computed, scope: StreetScope, limit: number): Board {
  // A hub without a household has no street: only a caller limited to no street sees it (street-scope.ts).
  const visible = c.homes.filter((h) => inStreetScope(scope, h.street ?? undefined));
  const counts = Object.fromEntries(URGENCIES.map((u) => [u, 0])) as Board["counts"];
  for (const h of visible) counts[h.urgency]++;
  return { homes: visible.slice(0, limit), total: visible.length, counts, generatedAt: c.at };
}
