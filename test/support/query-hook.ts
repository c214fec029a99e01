// A kysely handle that reports each statement as it is executed (its node kind), and can slow every result:
// for tests that count a component's queries or act in the middle of its work.
import type { Kysely } from "kysely";

export function withQueryHook<DB>(db: Kysely<DB>, onQuery: (kind: string) => void, delayMs = 0): Kysely<DB> {
  return db.withPlugin({
    transformQuery: (a) => {
      onQuery(a.node.kind);
      return a.node;
    },
    transformResult: async (a) => {
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      return a.result;
    },
  });
}
