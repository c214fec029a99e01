// The Zigbee products Anxin supports, as virtual devices that identify themselves the way the real ones do
// (node descriptor, endpoints/clusters, genBasic modelId/manufacturerName) so that zigbee-herdsman-converters'
// findByDevice resolves the same definition after herdsman's interview. Each factory has a fixed, distinct ieee.
import { Zcl } from "zigbee-herdsman";
import { TuyaDpType, VirtualDevice, type AttrInit, type VirtualDeviceSpec } from "./virtual-device.js";

export interface ProductOptions {
  ieee?: string;
  nwk?: number;
}

const C = {
  basic: 0x0000,
  powerCfg: 0x0001,
  identify: 0x0003,
  groups: 0x0004,
  scenes: 0x0005,
  onOff: 0x0006,
  time: 0x000a,
  alarms: 0x0009,
  ota: 0x0019,
  iasZone: 0x0500,
  iasWd: 0x0502,
  diagnostics: 0x0b05,
  tuya: 0xef00,
} as const;

const HEIMAN = 4619; // 0x120B, HEIMAN_TECHNOLOGY_CO_LTD in the node descriptor
const TUYA = 4417; // 0x1141, in the node descriptor of Tuya TS0001 relays and TS0601 MCU devices alike

/** IAS zone types (ZCL): the detector tells the CIE what it is. */
export const ZoneType = { fire: 0x0028, water: 0x002a, carbonMonoxide: 0x002b, personalEmergency: 0x002c, warningDevice: 0x0225 } as const;

function basic(manufacturerName: string, modelId: string, powerSource: number, extra: Record<string, AttrInit> = {}): Record<string, AttrInit> {
  // values as Heiman zones report them (zclVersion 1, stack 2, hw 16, dotted date code)
  return { zclVersion: 1, appVersion: 17, stackVersion: 2, hwVersion: 16, manufacturerName, modelId, dateCode: "2019.8.29", powerSource, ...extra };
}

function iasZone(zoneType: number): Record<string, AttrInit> {
  return { zoneState: 0, zoneType, zoneStatus: 0, iasCieAddr: "0x0000000000000000", zoneId: 0xff };
}

const BATTERY = 3; // genBasic powerSource: battery
const MAINS = 1; // mains (single phase)

interface HeimanZone {
  product: string;
  modelId: string;
  ieee: string;
  kind: "Router" | "EndDevice";
  zoneType: number;
  deviceId?: number;
  battery: boolean;
  extraIn?: readonly number[];
  outClusters?: readonly number[];
  extraAttrs?: Record<string, Record<string, AttrInit>>;
}

function heimanZone(z: HeimanZone, o: ProductOptions): VirtualDevice {
  const inClusters = [C.basic, ...(z.battery ? [C.powerCfg] : []), C.identify, C.iasZone, ...(z.extraIn ?? [])];
  const attributes: Record<string, Record<string, AttrInit>> = {
    genBasic: basic("HEIMAN", z.modelId, z.kind === "Router" ? MAINS : BATTERY),
    ssIasZone: iasZone(z.zoneType),
    ...(z.battery ? { genPowerCfg: { batteryVoltage: 30, batteryPercentageRemaining: 200, batteryAlarmState: 0 } } : {}),
    ...z.extraAttrs,
  };
  const spec: VirtualDeviceSpec = {
    product: z.product,
    ieee: o.ieee ?? z.ieee,
    nwk: o.nwk,
    kind: z.kind,
    manufacturerCode: HEIMAN,
    mainsPowered: z.kind === "Router",
    enrollRequest: true,
    endpoints: [{ endpoint: 1, profileId: 0x0104, deviceId: z.deviceId ?? 0x0402, deviceVersion: 0, inClusters, outClusters: [...(z.outClusters ?? [C.ota])], attributes }],
  };
  return new VirtualDevice(spec);
}

/** Heiman HS1SA smoke alarm (modelId SmokeSensor-EM) → converters model "HS3SA/HS1SA"; alarm on Zone Status bit 0. */
export function heimanSmokeHS1SA(o: ProductOptions = {}): VirtualDevice {
  return heimanZone(
    {
      product: "Heiman HS1SA smoke alarm",
      modelId: "SmokeSensor-EM",
      ieee: "0x000d6f0011a5e001",
      kind: "EndDevice",
      zoneType: ZoneType.fire,
      battery: true,
      // the real one lists IAS WD and diagnostics too
      extraIn: [C.iasWd, C.diagnostics],
      extraAttrs: { ssIasWd: { maxDuration: 240 } },
    },
    o,
  );
}

/** Heiman mains gas detectors: routers with alarms + IAS zone, identify and OTA client (as a public HS1CG-E signature shows).
 * ZCL has no gas zone type; 0x002B is assumed (unverified). */
const HEIMAN_GAS = { kind: "Router", zoneType: ZoneType.carbonMonoxide, battery: false, extraIn: [C.alarms], outClusters: [C.identify, C.ota] } as const;

/** Heiman HS1CG combustible gas detector (modelId RH3070, mains router) → "HS1CG"; gas on alarm1. */
export function heimanGasHS1CG(o: ProductOptions = {}): VirtualDevice {
  return heimanZone({ product: "Heiman HS1CG gas detector", modelId: "RH3070", ieee: "0x000d6f0011a5e002", ...HEIMAN_GAS }, o);
}

/** Heiman HS3CG combustible gas detector (modelId GASSensor-N, mains router) → "HS3CG"; gas on alarm2. */
export function heimanGasHS3CG(o: ProductOptions = {}): VirtualDevice {
  return heimanZone({ product: "Heiman HS3CG gas detector", modelId: "GASSensor-N", ieee: "0x000d6f0011a5e003", ...HEIMAN_GAS }, o);
}

/** Heiman HS1CA-E carbon monoxide alarm (modelId COSensor-EM, battery) → "HS1CA-E"; CO on alarm1. */
export function heimanCoHS1CAE(o: ProductOptions = {}): VirtualDevice {
  return heimanZone({ product: "Heiman HS1CA-E CO alarm", modelId: "COSensor-EM", ieee: "0x000d6f0011a5e004", kind: "EndDevice", zoneType: ZoneType.carbonMonoxide, battery: true }, o);
}

/** Heiman HS1EB emergency button (modelId SOS-EM, manufacturer HEIMAN) → "HS1EB/HS1EB-E"; zonestatus 1 = single press. */
export function heimanSosHS1EB(o: ProductOptions = {}): VirtualDevice {
  return heimanZone({ product: "Heiman HS1EB SOS button", modelId: "SOS-EM", ieee: "0x000d6f0011a5e005", kind: "EndDevice", zoneType: ZoneType.personalEmergency, battery: true }, o);
}

/** Heiman HS2WD-E siren (modelId WarningDevice, mains with backup battery) → "HS2WD-E"; driven by ssIasWd startWarning. */
export function heimanSirenHS2WDE(o: ProductOptions = {}): VirtualDevice {
  return heimanZone(
    {
      product: "Heiman HS2WD-E siren",
      modelId: "WarningDevice",
      ieee: "0x000d6f0011a5e006",
      kind: "Router",
      zoneType: ZoneType.warningDevice,
      deviceId: 0x0403,
      battery: false,
      extraIn: [C.powerCfg, C.iasWd],
      extraAttrs: { ssIasWd: { maxDuration: 240 }, genPowerCfg: { batteryPercentageRemaining: 200, batteryVoltage: 42 } },
    },
    o,
  );
}

/** Heiman HS2WD-EF siren (modelId WarningDevice-EFA1-3.0, mains with backup battery) → "HS2WD-EF": the multi-mode
 * one (stop, burglar, fire, emergency, and a sound level). Laid out like the HS2WD-E; not captured from a real unit. */
export function heimanSirenHS2WDEF(o: ProductOptions = {}): VirtualDevice {
  return heimanZone(
    {
      product: "Heiman HS2WD-EF siren",
      modelId: "WarningDevice-EFA1-3.0",
      ieee: "0x000d6f0011a5e00a",
      kind: "Router",
      zoneType: ZoneType.warningDevice,
      deviceId: 0x0403,
      battery: false,
      extraIn: [C.powerCfg, C.iasWd],
      extraAttrs: { ssIasWd: { maxDuration: 240 }, genPowerCfg: { batteryPercentageRemaining: 200, batteryVoltage: 42 } },
    },
    o,
  );
}

/** Tuya gas/water valve on a genOnOff relay (TS0001 / _TZ3000_o4cjetlm) → "ZN231392". onOff 1 = open. */
export function tuyaGasValve(o: ProductOptions = {}): VirtualDevice {
  return new VirtualDevice({
    product: "Tuya ZN231392 gas valve",
    ieee: o.ieee ?? "0xa4c138d0e5f1a007",
    nwk: o.nwk,
    kind: "Router",
    manufacturerCode: TUYA,
    mainsPowered: true,
    endpoints: [
      {
        endpoint: 1,
        profileId: 0x0104,
        deviceId: 0x0100,
        deviceVersion: 1,
        // as TS0001 relay modules list them (genTime among the inputs)
        inClusters: [C.basic, C.time, C.groups, C.scenes, C.onOff],
        outClusters: [C.ota],
        attributes: {
          genBasic: basic("_TZ3000_o4cjetlm", "TS0001", MAINS, { zclVersion: 3, appVersion: 70, stackVersion: 0, dateCode: "" }),
          genOnOff: {
            onOff: 1,
            // Tuya power-on behaviour (manufacturer attribute 0x8002, enum8: 0 off, 1 on, 2 previous)
            "32770": { type: Zcl.DataType.ENUM8, value: 2 },
          },
        },
      },
    ],
  });
}

function tuyaMcu(product: string, ieee: string, manufacturerName: string, dps: Record<number, [number, Buffer]>, o: ProductOptions): VirtualDevice {
  return new VirtualDevice({
    product,
    ieee: o.ieee ?? ieee,
    nwk: o.nwk,
    kind: "Router",
    manufacturerCode: TUYA,
    mainsPowered: true,
    tuyaDps: dps,
    endpoints: [
      {
        endpoint: 1,
        profileId: 0x0104,
        deviceId: 0x0051,
        deviceVersion: 1,
        // as TS0601 devices list them
        inClusters: [C.groups, C.scenes, C.tuya, C.basic],
        outClusters: [C.ota, C.time],
        attributes: { genBasic: basic(manufacturerName, "TS0601", MAINS, { zclVersion: 3, appVersion: 70, stackVersion: 0, dateCode: "" }) },
      },
    ],
  });
}

/** Tuya mmWave radar with fall detection (TS0601 / _TZE200_lu01t0zl) → "MIR-HE200-TY": DP 1 presence, DP 116 fall_down_status. */
export function tuyaFallRadar(o: ProductOptions = {}): VirtualDevice {
  return tuyaMcu(
    "Tuya MIR-HE200-TY fall radar",
    "0xa4c138d0e5f1a008",
    "_TZE200_lu01t0zl",
    // DP 1 is an enum on this radar: the converter reads presence as value === 1
    { 1: [TuyaDpType.enum, Buffer.from([0])], 116: [TuyaDpType.enum, Buffer.from([0])] },
    o,
  );
}

/** Tuya ceiling presence radar (TS0601 / _TZE204_ztc6ggyl) → white label "ZY-M100-L": DP 1 presence. */
export function tuyaPresenceZYM100(o: ProductOptions = {}): VirtualDevice {
  return tuyaMcu("Tuya ZY-M100-L presence radar", "0xa4c138d0e5f1a009", "_TZE204_ztc6ggyl", { 1: [TuyaDpType.enum, Buffer.from([0])] }, o);
}

export interface ProductEntry {
  make: (o?: ProductOptions) => VirtualDevice;
  /** model of the converters definition findByDevice must resolve */
  model: string;
  /** has an IAS zone that herdsman enrols during the interview */
  ias: boolean;
}

/** Every product with the converter model it must resolve to. */
export const PRODUCTS: Record<string, ProductEntry> = {
  heimanSmokeHS1SA: { make: heimanSmokeHS1SA, model: "HS3SA/HS1SA", ias: true },
  heimanGasHS1CG: { make: heimanGasHS1CG, model: "HS1CG", ias: true },
  heimanGasHS3CG: { make: heimanGasHS3CG, model: "HS3CG", ias: true },
  heimanCoHS1CAE: { make: heimanCoHS1CAE, model: "HS1CA-E", ias: true },
  heimanSosHS1EB: { make: heimanSosHS1EB, model: "HS1EB/HS1EB-E", ias: true },
  heimanSirenHS2WDE: { make: heimanSirenHS2WDE, model: "HS2WD-E", ias: true },
  heimanSirenHS2WDEF: { make: heimanSirenHS2WDEF, model: "HS2WD-EF", ias: true },
  tuyaGasValve: { make: tuyaGasValve, model: "ZN231392", ias: false },
  tuyaFallRadar: { make: tuyaFallRadar, model: "MIR-HE200-TY", ias: false },
  tuyaPresenceZYM100: { make: tuyaPresenceZYM100, model: "ZY-M100-L", ias: false },
};
