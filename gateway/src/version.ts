// The release this build is; reported in status and in the hub_started event.
export const VERSION = "0.1.0";
