/**
 * The emulated coordinator's non-volatile memory: OSAL NV items (legacy ids) and the
 * Z-Stack 3.x extended tables (sysid/itemid/subid). It lives in the emulator object, so a
 * host that disconnects and comes back finds the network it formed (a "resumed" start).
 */
import { NvItemsIds, NvSystemIds } from "zigbee-herdsman/dist/adapter/z-stack/constants/common.js";
import * as Structs from "zigbee-herdsman/dist/adapter/z-stack/structs/index.js";

/** NV status codes used by the OSAL NV SREQs. */
export const NvStatus = { SUCCESS: 0x00, FAILURE: 0x01, ITEM_INITIALIZED: 0x09, BAD_ITEM_LEN: 0x0a } as const;

export interface FormedNetwork {
  panId: number;
  extendedPanId: Buffer; // big-endian, as herdsman's options give it
  channel: number;
  networkKey: Buffer;
}

export class NvMemory {
  private readonly items = new Map<number, Buffer>();
  private readonly extended = new Map<string, Buffer>();

  constructor() {
    this.factoryDefaults();
  }

  /**
   * What a freshly flashed CC2652 holds. The 24-byte NWKKEY matters: herdsman sizes it to
   * tell aligned (24) from unaligned (21) targets, and its nv.init() throws when it is absent.
   */
  factoryDefaults(): void {
    this.items.clear();
    this.extended.clear();
    this.items.set(NvItemsIds.NWKKEY, Buffer.alloc(24));
    this.items.set(NvItemsIds.STARTUP_OPTION, Buffer.from([0x00]));
  }

  length(id: number): number {
    return this.items.get(id)?.length ?? 0;
  }

  read(id: number, offset: number, max = 240): Buffer | undefined {
    const item = this.items.get(id);
    if (!item || offset > item.length) return undefined;
    return Buffer.from(item.subarray(offset, Math.min(item.length, offset + max)));
  }

  get(id: number): Buffer | undefined {
    return this.items.get(id);
  }

  /** osalNvItemInit: ITEM_INITIALIZED when it was created (yes, that is the "success" code). */
  init(id: number, len: number, initValue: Buffer): number {
    if (this.items.has(id)) return NvStatus.SUCCESS;
    const item = Buffer.alloc(len);
    initValue.copy(item, 0, 0, Math.min(len, initValue.length));
    this.items.set(id, item);
    return NvStatus.ITEM_INITIALIZED;
  }

  write(id: number, offset: number, value: Buffer): number {
    const item = this.items.get(id);
    if (!item) return NvStatus.FAILURE;
    if (offset + value.length > item.length) return NvStatus.BAD_ITEM_LEN;
    value.copy(item, offset);
    return NvStatus.SUCCESS;
  }

  set(id: number, value: Buffer): void {
    this.items.set(id, Buffer.from(value));
  }

  delete(id: number): number {
    return this.items.delete(id) ? NvStatus.SUCCESS : NvStatus.ITEM_INITIALIZED;
  }

  extendedLength(sysId: number, itemId: number, subId: number): number {
    return this.extended.get(`${sysId}:${itemId}:${subId}`)?.length ?? 0;
  }

  extendedRead(sysId: number, itemId: number, subId: number, offset: number, len: number): Buffer | undefined {
    const item = this.extended.get(`${sysId}:${itemId}:${subId}`);
    return item ? Buffer.from(item.subarray(offset, offset + len)) : undefined;
  }

  extendedCreate(sysId: number, itemId: number, subId: number, len: number): number {
    const key = `${sysId}:${itemId}:${subId}`;
    if (this.extended.has(key)) return NvStatus.ITEM_INITIALIZED;
    this.extended.set(key, Buffer.alloc(len));
    return NvStatus.SUCCESS;
  }

  extendedWrite(sysId: number, itemId: number, subId: number, offset: number, value: Buffer): number {
    const item = this.extended.get(`${sysId}:${itemId}:${subId}`);
    if (!item) return NvStatus.FAILURE;
    if (offset + value.length > item.length) return NvStatus.BAD_ITEM_LEN;
    value.copy(item, offset);
    return NvStatus.SUCCESS;
  }

  extendedDelete(sysId: number, itemId: number, subId: number): number {
    return this.extended.delete(`${sysId}:${itemId}:${subId}`) ? NvStatus.SUCCESS : NvStatus.FAILURE;
  }

  /** Items the network layer owns ("state"), wiped by startup option bit 1. */
  clearNetworkState(): void {
    for (const id of [
      NvItemsIds.NIB,
      NvItemsIds.NWK_ACTIVE_KEY_INFO,
      NvItemsIds.NWK_ALTERN_KEY_INFO,
      NvItemsIds.ZNP_HAS_CONFIGURED_ZSTACK3,
    ]) {
      this.items.delete(id);
    }
    this.items.set(NvItemsIds.NWKKEY, Buffer.alloc(24));
    for (const key of [...this.extended.keys()]) {
      if (key.startsWith(`${NvSystemIds.ZSTACK}:`)) this.extended.delete(key);
    }
  }

  /** The commissioning parameters the host wrote before asking for a network formation. */
  commissioningParameters(): FormedNetwork {
    const panId = this.items.get(NvItemsIds.PANID)?.readUInt16LE(0);
    const epidLe = this.items.get(NvItemsIds.EXTENDED_PAN_ID);
    const channelMask = this.items.get(NvItemsIds.CHANLIST)?.readUInt32LE(0);
    const key = this.items.get(NvItemsIds.PRECFGKEY);
    if (panId === undefined || !epidLe || channelMask === undefined || !key) {
      throw new Error("formation requested before PANID, EXTENDED_PAN_ID, CHANLIST and PRECFGKEY were written");
    }
    let channel = 11;
    while (channel <= 26 && (channelMask & (1 << channel)) === 0) channel++;
    if (channel > 26) throw new Error(`no channel in mask 0x${channelMask.toString(16)}`);
    return { panId, extendedPanId: Buffer.from(epidLe).reverse(), channel, networkKey: Buffer.from(key) };
  }

  /** Writes what the network layer stores once it formed a network as coordinator. */
  storeFormedNetwork(network: FormedNetwork): void {
    const nib = Structs.nib();
    nib.SequenceNum = 1;
    nib.PassiveAckTimeout = 5;
    nib.MaxBroadcastRetries = 2;
    nib.MaxChildren = 0;
    nib.MaxDepth = 20;
    nib.MaxRouters = 0;
    nib.BroadcastDeliveryTime = 30;
    nib.ReportConstantCost = 0;
    nib.RouteDiscRetries = 0;
    nib.SecureAllFrames = 1;
    nib.SecurityLevel = 5;
    nib.SymLink = 1;
    nib.CapabilityFlags = 0x8f;
    nib.TransactionPersistenceTime = 7;
    nib.nwkProtocolVersion = 2;
    nib.RouteDiscoveryTime = 13;
    nib.RouteExpiryTime = 30;
    nib.nwkDevAddress = 0x0000;
    nib.nwkLogicalChannel = network.channel;
    nib.nwkCoordAddress = 0x0000;
    nib.nwkCoordExtAddress = Buffer.alloc(8);
    nib.nwkPanId = network.panId;
    nib.nwkState = 6; // NWK_ROUTER: the coordinator runs as the network's root router
    nib.channelList = 1 << network.channel;
    nib.beaconOrder = 15;
    nib.superFrameOrder = 15;
    nib.scanDuration = 4;
    nib.extendedPANID = Buffer.from(network.extendedPanId);
    nib.nwkKeyLoaded = 1;
    nib.nwkLinkStatusPeriod = 15;
    nib.nwkRouterAgeLimit = 3;
    nib.nwkIsConcentrator = 1;
    nib.nwkConcentratorDiscoveryTime = 120;
    nib.nwkConcentratorRadius = 10;
    nib.nwkAllFresh = 1;
    nib.nwkManagerAddr = 0x0000;
    this.items.set(NvItemsIds.NIB, nib.serialize("aligned"));

    const key = Structs.nwkKeyDescriptor();
    key.keySeqNum = 0;
    key.key = Buffer.from(network.networkKey);
    this.items.set(NvItemsIds.NWK_ACTIVE_KEY_INFO, key.serialize("aligned"));
    this.items.set(NvItemsIds.NWK_ALTERN_KEY_INFO, key.serialize("aligned"));
    const nwkKey = Buffer.alloc(24);
    network.networkKey.copy(nwkKey, 0);
    this.items.set(NvItemsIds.NWKKEY, nwkKey);
  }

  /** The network the NIB describes, or undefined when none was formed. */
  formedNetwork(): FormedNetwork | undefined {
    const raw = this.items.get(NvItemsIds.NIB);
    const keyRaw = this.items.get(NvItemsIds.NWK_ACTIVE_KEY_INFO);
    if (!raw || !keyRaw) return undefined;
    const nib = Structs.nib(raw);
    if (nib.nwkPanId === 0xffff || nib.nwkLogicalChannel === 0) return undefined;
    const key = Structs.nwkKeyDescriptor(keyRaw);
    return {
      panId: nib.nwkPanId,
      extendedPanId: Buffer.from(nib.extendedPANID),
      channel: nib.nwkLogicalChannel,
      networkKey: Buffer.from(key.key),
    };
  }
}
