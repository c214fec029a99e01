// The camera password, read from a file only the hub's user can read: never in hub.yaml, never in a log.
import { open } from "node:fs/promises";

export class CameraSetupError extends Error {
  override name = "CameraSetupError";
}

/** The file's first line; refuses a file group or others can read or change, as the uplink's secrets are. */
export async function readPasswordFile(file: string): Promise<string> {
  let fh;
  try {
    fh = await open(file, "r");
  } catch (e) {
    throw new CameraSetupError(`camera: cannot open the password file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    // Checked on the open file, so what is checked is what is read.
    const st = await fh.stat();
    if (!st.isFile()) throw new CameraSetupError(`camera: the password file ${file} is not a regular file`);
    const mode = st.mode & 0o777;
    if (mode & 0o077)
      throw new CameraSetupError(`camera: refusing to use ${file}: its mode is ${mode.toString(8).padStart(4, "0")}, so other users can read the camera password. Fix with: chmod 600 ${file}`);
    const password = (await fh.readFile("utf8")).split(/\r?\n/)[0] ?? "";
    if (!password) throw new CameraSetupError(`camera: the password file ${file} is empty`);
    return password;
  } finally {
    await fh.close();
  }
}
