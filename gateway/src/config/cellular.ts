// The `cellular` section: the hub's second path for alarms, a USB cellular module spoken to in AT commands
// (docs/cellular.md). Absent: the hub has one path (broadband) and says so in `anxin-hub status`.
import { z } from "zod";

const seconds = (min: number, max: number) => z.number().min(min).max(max);

export const cellularSchema = z
  .object({
    port: z
      .string()
      .min(1)
      .regex(/^\/[^\s]+$/, "an absolute serial device path such as /dev/ttyUSB2 (the module's AT port)")
      .describe("the module's AT command port (Quectel EC2x and SIMCom SIM7600: /dev/ttyUSB2; better a /dev/serial/by-id/… name)"),
    baudRate: z.number().int().min(1200).max(4_000_000).default(115200),
    relayNumber: z
      .string()
      .regex(/^\+?[0-9]{3,20}$/, "an international number: + and digits")
      .describe("the relay's inbound SMS number (its sms.inboundNumber): where alarms go by SMS when every data path is down"),
    statusEveryS: seconds(10, 3600).default(60).describe("how often SIM, registration, signal and operator are checked"),
    primary: z
      .object({
        downAfterS: seconds(1, 600).default(5).describe("the broadband path is down once its MQTT connection has been lost this long"),
        ackTimeoutS: seconds(1, 600).default(8).describe("…or once an event sent over it has waited this long for the relay's ack"),
        noticeAfterS: seconds(0, 86400).default(60).describe("after this long down, the hub tells the relay (primary_path_down, by SMS when no data session carries it)"),
      })
      .strict()
      .prefault({}),
    data: z
      .object({
        enabled: z.boolean().default(true).describe("try the module's data session (MQTT to the same broker) before SMS"),
        cid: z.number().int().min(1).max(24).default(1).describe("the PDP context the operating system brought up (AT+CGPADDR=<cid> gives its address)"),
        waitS: seconds(0, 60).default(4).describe("how long an alarm waits for an ack over the data session before it also goes by SMS"),
        probeEveryS: seconds(5, 3600).default(30).describe("while on the data session, how often the broadband path is tried again"),
      })
      .strict()
      .prefault({}),
    test: z
      .object({
        everyH: seconds(1, 24 * 90).default(168).describe("a test SMS (second_path_test) this often, so a dead SIM is found before it is needed; weekly by default"),
        firstAfterS: seconds(0, 86400).default(600).describe("the first test after a start, when none was made within everyH"),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type CellularConfig = z.infer<typeof cellularSchema>;
