// How the API describes a household's device retirements (households/retirements.ts), for the OpenAPI page.
import { z } from "zod";
import { RETIREMENT_STATES } from "../../households/retirement-table.js";

const ms = z.number().int().describe("ms since epoch");

export const retirementsOut = z
  .array(
    z.object({
      device: z.string().nullable().describe("the hub's device id, from its latest commissioning report; null: none known (state no_device)"),
      kind: z.string().describe("the plan kind retired: vital_radar"),
      room: z.string(),
      state: z.enum(RETIREMENT_STATES).describe("pending: the hub has not answered yet (retire_device is sent whenever it is online); done: the hub retired it; refused: the hub refused (see reason; an operator alert is raised); no_device: the relay knows no hub device to retire (see reason)"),
      requestedAt: ms,
      doneAt: ms.optional().describe("when the hub's answer was stored"),
      reason: z.string().optional(),
      commands: z.number().int().describe("retire_device commands sent so far"),
      lastSentAt: ms.optional(),
    }),
  )
  .describe("devices the hub was asked to retire after a consent withdrawal (a camera has no hub device: none for it)");
