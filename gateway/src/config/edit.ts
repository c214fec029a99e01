// Adding devices to a hub configuration file as text: the installer's comments, order and layout stay as
// they were, and only the new entries are appended (under devices:, radars: or zigbee.devices:).
import { isSeq, parseDocument } from "yaml";

export interface NewEntry {
  section: "devices" | "radars" | "zigbee.devices";
  entry: Record<string, string | number>;
  /** A comment written above the entry (who added it, from which plan). */
  comment?: string;
}

export class ConfigEditError extends Error {
  override name = "ConfigEditError";
}

export function addEntries(text: string, entries: readonly NewEntry[]): string {
  const doc = parseDocument(text);
  if (doc.errors.length) throw new ConfigEditError(`the configuration is not valid YAML: ${doc.errors[0]!.message.split("\n")[0]}`);
  for (const e of entries) {
    const at = e.section.split(".");
    if (at.length > 1 && !doc.hasIn(at.slice(0, -1))) throw new ConfigEditError(`the configuration has no \`${at.slice(0, -1).join(".")}:\` section to add ${String(e.entry.id)} to`);
    const existing = doc.getIn(at, true);
    if (existing === undefined || existing === null || (existing as { value?: unknown }).value === null) doc.setIn(at, doc.createNode([]));
    else if (!isSeq(existing)) throw new ConfigEditError(`\`${e.section}\` in the configuration is not a list`);
    const node = doc.createNode(e.entry);
    node.flow = true;
    if (e.comment) node.commentBefore = ` ${e.comment}`;
    doc.addIn(at, node);
  }
  return doc.toString({ lineWidth: 0 });
}
