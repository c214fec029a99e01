#!/usr/bin/python3
"""Independent Modbus RTU slave for the hub's integration tests.

Emulates the field devices the hub talks to, by their manuals (0-based PDU
addresses), on one serial port (normally one end of a socat PTY pair):

  co     Greystone CMD5B4 CO transmitter        (holding registers)
  lel    Pemtech PT495, LEL variant              (holding registers)
  valve  Rotork-style actuator on a gas valve    (coils, DIs, HR3/HR5)
  radar  Saifuli MTDX62-MB presence radar        (input + holding registers)

It is built on Debian's pymodbus 3.0 rather than on the hub's own Modbus
library, so a bug shared by master and slave cannot hide itself.

Usage:
  /usr/bin/python3 test/bench/modbus_slave.py --port /tmp/x/ttyB --baud 9600 \
      --devices co=1,lel=2,valve=3,radar=4

Control channel: one JSON object per line on stdin, exactly one JSON reply
line on stdout per command (the first stdout line is {"ready":true} once the
port is open). Logs go to stderr only.

  {"cmd":"set","unit":1,"table":"hr|ir|co|di","address":1,"value":120}
      raw store write ("values":[..] writes several); no device logic runs
  {"cmd":"get","unit":3,"table":"di","address":1,"count":3} -> {"ok":true,"values":[..]}
  {"cmd":"co","unit":1,"ppm":150}            also: alarm_ppm, temp_c, fault
  {"cmd":"lel","unit":2,"percent":30.5}      also: fault, calibration
  {"cmd":"radar","unit":4,"presence":1}      also: lux, distance_m, status
  {"cmd":"valve","unit":3,"mode":"normal|jam|stuck|slow","travel_ms":2000}
      also: "state":"open|closed" to put the valve at a limit at once
  {"cmd":"stats","unit":3} -> {"ok":true,"close_commands":N,"requests":N}
  {"cmd":"units"} -> {"ok":true,"units":{"1":"co",...}}

Exit status: 0 on stdin EOF or SIGTERM, 2 if the serial port goes away,
1 on a start-up error.
"""

import argparse
import asyncio
import ctypes
import json
import logging
import os
import signal
import sys

try:
    import serial
    from pymodbus.datastore import ModbusServerContext, ModbusSlaveContext
    from pymodbus.datastore.store import ModbusSequentialDataBlock
    from pymodbus.server import StartAsyncSerialServer
    from pymodbus.server.async_io import ModbusSingleRequestHandler
    from pymodbus.transaction import ModbusRtuFramer
except ImportError as exc:  # the pyenv shim has no pymodbus: say what to do
    sys.stderr.write(
        f"modbus_slave: {exc}; run with /usr/bin/python3 and "
        "apt-get install python3-pymodbus python3-serial\n"
    )
    sys.exit(1)

log = logging.getLogger("modbus_slave")

# Function codes grouped by the table they touch and whether they write.
WRITE_FCS = {5, 6, 15, 16, 22, 23}
TABLE_KEYS = {"co": "c", "di": "d", "hr": "h", "ir": "i"}
BIT_TABLES = {"c", "d"}


def die_with_parent():
    """Ask the kernel to SIGTERM us if the spawning process dies (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Device(ModbusSlaveContext):
    """One unit id on the bus.

    Tables have the sizes the device really has, so reads past them get
    exception 2 like on the device; writes are only accepted where the
    manual allows them (``writable``), everything else is read-only.
    """

    kind = "?"
    sizes = {"c": 0, "d": 0, "h": 0, "i": 0}
    writable = {"c": set(), "h": set()}

    def __init__(self, unit, loop):
        super().__init__(
            # Blocks need at least one cell; the real size is enforced in validate.
            co=ModbusSequentialDataBlock(0, [False] * max(1, self.sizes["c"])),
            di=ModbusSequentialDataBlock(0, [False] * max(1, self.sizes["d"])),
            hr=ModbusSequentialDataBlock(0, [0] * max(1, self.sizes["h"])),
            ir=ModbusSequentialDataBlock(0, [0] * max(1, self.sizes["i"])),
            zero_mode=True,  # pymodbus otherwise shifts every address by +1
        )
        self.unit = unit
        self.loop = loop
        self.requests = 0
        self.close_commands = 0

    # --- pymodbus hooks -------------------------------------------------
    def validate(self, fc_as_hex, address, count=1):
        # Called exactly once per request that reaches this unit.
        self.requests += 1
        table = self.decode(fc_as_hex)
        if count < 1 or address < 0 or address + count > self.sizes[table]:
            return False
        if fc_as_hex in WRITE_FCS:
            allowed = self.writable.get(table, set())
            if not all(a in allowed for a in range(address, address + count)):
                return False
        return True

    def setValues(self, fc_as_hex, address, values):
        super().setValues(fc_as_hex, address, values)
        if fc_as_hex in WRITE_FCS:
            table = self.decode(fc_as_hex)
            for offset, value in enumerate(values):
                self.on_write(table, address + offset, value)

    def on_write(self, table, address, value):
        """Device reaction to a Modbus write (subclasses)."""

    # --- helpers for the control channel --------------------------------
    def put(self, table, address, value):
        if table in BIT_TABLES:
            value = bool(value)
        self.store[table].setValues(address, [value])

    def read(self, table, address):
        return self.store[table].getValues(address, 1)[0]

    def control(self, msg):
        raise ValueError(f"unit {self.unit} ({self.kind}) has no '{msg.get('cmd')}' command")

    def stats(self):
        return {"close_commands": self.close_commands, "requests": self.requests}


def reg(value):
    value = int(round(value))
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"register value {value} out of range 0..65535")
    return value


class CoDetector(Device):
    """Greystone CMD5B4: HR0 status, HR1 ppm, HR2 temp x0.1, HR3 buzzer,
    HR4 relay 1, HR5 relay 2, HR6 test, HR7 fault; 0x14..0x1B settings (FC06)."""

    kind = "co"
    sizes = {"c": 0, "d": 0, "h": 0x1C, "i": 0}
    writable = {"h": set(range(0x14, 0x1C))}

    def __init__(self, unit, loop):
        super().__init__(unit, loop)
        self.alarm_ppm = 100
        self.put("h", 2, 215)

    def evaluate(self):
        # The transmitter drives its own status and relay 1 from its set point.
        alarm = 1 if self.read("h", 1) >= self.alarm_ppm else 0
        self.put("h", 0, alarm)
        self.put("h", 4, alarm)

    def control(self, msg):
        if msg.get("cmd") != "co":
            return super().control(msg)
        if "alarm_ppm" in msg:
            self.alarm_ppm = reg(msg["alarm_ppm"])
        if "ppm" in msg:
            self.put("h", 1, reg(msg["ppm"]))
        if "temp_c" in msg:
            self.put("h", 2, int(round(float(msg["temp_c"]) * 10)) & 0xFFFF)
        if "fault" in msg:
            self.put("h", 7, 1 if msg["fault"] else 0)
        self.evaluate()
        return {}


class LelDetector(Device):
    """Pemtech PT495 (LEL): HR0 %LEL x10, HR1 type<<8 | flags, HR2/HR4 alarm
    set points x10, HR3/HR5 latching, HR6 reset."""

    kind = "lel"
    sizes = {"c": 0, "d": 0, "h": 7, "i": 0}
    writable = {"h": {2, 3, 4, 5, 6}}
    SENSOR_LEL = 0x02
    ALARM, CALIBRATION, FAULT = 0x01, 0x02, 0x04

    def __init__(self, unit, loop):
        super().__init__(unit, loop)
        self.flags = 0
        self.latched = False
        self.put("h", 2, 200)
        self.put("h", 4, 400)
        self.publish_flags()

    def publish_flags(self):
        self.put("h", 1, (self.SENSOR_LEL << 8) | self.flags)

    def evaluate(self):
        above = self.read("h", 0) >= self.read("h", 2)
        if above and self.read("h", 3):
            self.latched = True
        alarm = above or self.latched
        self.flags = (self.flags | self.ALARM) if alarm else (self.flags & ~self.ALARM)
        self.publish_flags()

    def on_write(self, table, address, value):
        if table != "h":
            return
        if address == 6 and value:
            # Reset releases latched alarms; the register reads back as 0.
            self.latched = False
            self.put("h", 6, 0)
        if address == 3 and not value:
            self.latched = False
        self.evaluate()

    def control(self, msg):
        if msg.get("cmd") != "lel":
            return super().control(msg)
        if "percent" in msg:
            self.put("h", 0, reg(float(msg["percent"]) * 10))
        for key, bit in (("fault", self.FAULT), ("calibration", self.CALIBRATION)):
            if key in msg:
                self.flags = (self.flags | bit) if msg[key] else (self.flags & ~bit)
        self.evaluate()
        return {}


class Radar(Device):
    """Saifuli MTDX62-MB: IR0 presence, IR1 lux x0.1, IR2 distance x0.01 m,
    IR3 status; HR0..HR12 configuration (defaults from the device template)."""

    kind = "radar"
    sizes = {"c": 0, "d": 0, "h": 13, "i": 4}
    writable = {"h": set(range(0, 13))}

    def __init__(self, unit, loop):
        super().__init__(unit, loop)
        # max/min distance, confirm delay, absence delay, trigger/hold
        # sensitivity (no published default: mid-scale), entrance reduction,
        # slave id, baud, parity, report mode, light threshold, interval.
        defaults = [600, 60, 10, 30, 5, 5, 60, unit, 9600, 0, 2, 0, 600]
        for address, value in enumerate(defaults):
            self.put("h", address, value)
        self.put("i", 3, 1)

    def control(self, msg):
        if msg.get("cmd") != "radar":
            return super().control(msg)
        if "presence" in msg:
            self.put("i", 0, 1 if msg["presence"] else 0)
        if "lux" in msg:
            self.put("i", 1, reg(float(msg["lux"]) * 10))
        if "distance_m" in msg:
            self.put("i", 2, reg(float(msg["distance_m"]) * 100))
        if "status" in msg:
            self.put("i", 3, reg(msg["status"]))
        return {}


class Relay(Device):
    """A plain 8-channel Modbus relay module driving a siren: coils 0..7 (FC01 read,
    FC05 write), each output simply follows what was last written."""

    kind = "relay"
    sizes = {"c": 8, "d": 0, "h": 0, "i": 0}
    writable = {"c": set(range(0, 8))}


class Valve(Device):
    """Rotork-style actuator. Coils 0 stop / 1 close / 2 open / 3 ESD;
    DI0 moving, DI1 closed limit, DI2 open limit, DI10 obstructed, DI11
    jammed, DI12 manual, DI16 battery low; HR3 (and IR3) position % open;
    HR5 command (0 stop, 1 close, 2 open, 3 ESD).

    Commands latch: writing a coil OFF changes nothing, only another
    command does. HR5 := 0 is the manual's explicit stop command.
    """

    kind = "valve"
    sizes = {"c": 4, "d": 17, "h": 6, "i": 6}
    writable = {"c": {0, 1, 2, 3}, "h": {5}}
    STOP, CLOSE, OPEN, ESD = 0, 1, 2, 3
    DI_MOVING, DI_CLOSED, DI_OPEN, DI_OBSTRUCTED, DI_JAMMED, DI_MANUAL = 0, 1, 2, 10, 11, 12
    TICK_S = 0.02
    MODES = ("normal", "jam", "stuck", "slow")

    def __init__(self, unit, loop):
        super().__init__(unit, loop)
        self.mode = "normal"
        self.travel_ms = 2000
        self.position = 100.0
        self.motion = None
        self.settle(100.0)

    # --- state helpers ---------------------------------------------------
    def publish_position(self):
        pos = int(round(self.position * 10))  # the manual's scale: 0-1000 = 0.0-100.0 %
        self.put("h", 3, pos)
        self.put("i", 3, pos)

    def settle(self, position):
        """Stop at a position; limits only at the ends."""
        self.position = position
        self.put("d", self.DI_MOVING, False)
        self.put("d", self.DI_CLOSED, position <= 0)
        self.put("d", self.DI_OPEN, position >= 100)
        self.publish_position()

    def cancel_motion(self):
        if self.motion is not None:
            self.motion.cancel()
            self.motion = None

    # --- command handling ------------------------------------------------
    def on_write(self, table, address, value):
        if table == "c":
            if value:  # only an ON write is a command (latched semantics)
                self.command(address)
        elif table == "h" and address == 5:
            if value in (self.STOP, self.CLOSE, self.OPEN, self.ESD):
                self.command(value)

    def command(self, code):
        if code in (self.CLOSE, self.ESD):
            self.close_commands += 1
        log.info("unit %d valve command %d (mode %s)", self.unit, code, self.mode)
        if self.mode == "stuck":
            return  # the actuator never reacts and never says so
        # Coils mirror the latched command, as a readback of the last order.
        for coil in range(4):
            self.put("c", coil, coil == code)
        if code == self.STOP:
            self.cancel_motion()
            self.settle(self.position)
        else:
            self.start(0.0 if code in (self.CLOSE, self.ESD) else 100.0)

    def start(self, target):
        if self.motion is not None and self.motion_target == target:
            return
        self.cancel_motion()
        self.put("d", self.DI_JAMMED, False)
        if self.position == target and not self.read("d", self.DI_MOVING):
            self.settle(target)
            return
        self.motion_target = target
        self.motion = self.loop.create_task(self.travel(target))

    async def travel(self, target):
        full_s = self.travel_ms / 1000.0 * (5 if self.mode == "slow" else 1)
        rate = 100.0 / full_s if full_s > 0 else float("inf")  # % per second
        jam_after = full_s / 2 if (self.mode == "jam" and target == 0) else None
        start = self.loop.time()
        from_pos = self.position
        direction = -1 if target < from_pos else 1
        self.put("d", self.DI_MOVING, True)
        self.put("d", self.DI_CLOSED, False)
        self.put("d", self.DI_OPEN, False)
        try:
            while True:
                elapsed = self.loop.time() - start
                if jam_after is not None and elapsed >= jam_after:
                    self.position = from_pos + direction * rate * jam_after
                    self.position = min(100.0, max(0.0, self.position))
                    self.put("d", self.DI_MOVING, False)
                    self.put("d", self.DI_JAMMED, True)
                    self.publish_position()
                    log.info("unit %d valve jammed at %.0f%%", self.unit, self.position)
                    return
                pos = from_pos + direction * rate * elapsed
                if (direction < 0 and pos <= target) or (direction > 0 and pos >= target):
                    self.settle(target)
                    log.info("unit %d valve reached %s", self.unit,
                             "closed" if target == 0 else "open")
                    return
                self.position = pos
                self.publish_position()
                await asyncio.sleep(self.TICK_S)
        finally:
            if self.motion is asyncio.current_task():
                self.motion = None

    def control(self, msg):
        if msg.get("cmd") != "valve":
            return super().control(msg)
        if "mode" in msg:
            if msg["mode"] not in self.MODES:
                raise ValueError(f"valve mode must be one of {', '.join(self.MODES)}")
            self.mode = msg["mode"]
            if self.mode != "jam":
                self.put("d", self.DI_JAMMED, False)
        if "travel_ms" in msg:
            travel = int(msg["travel_ms"])
            if travel < 0:
                raise ValueError("travel_ms must be >= 0")
            self.travel_ms = travel
        if "state" in msg:
            if msg["state"] not in ("open", "closed"):
                raise ValueError("state must be 'open' or 'closed'")
            self.cancel_motion()
            self.put("d", self.DI_JAMMED, False)
            self.settle(100.0 if msg["state"] == "open" else 0.0)
        return {"mode": self.mode, "travel_ms": self.travel_ms}


KINDS = {"co": CoDetector, "lel": LelDetector, "valve": Valve, "radar": Radar, "relay": Relay}


def parse_devices(spec):
    units = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        kind, _, unit = item.partition("=")
        if kind not in KINDS:
            raise ValueError(f"unknown device kind '{kind}' (known: {', '.join(KINDS)})")
        unit_id = int(unit)
        if not 1 <= unit_id <= 247:
            raise ValueError(f"unit id {unit_id} out of range 1..247")
        if unit_id in units:
            raise ValueError(f"unit id {unit_id} used twice")
        units[unit_id] = kind
    if not units:
        raise ValueError("no devices given")
    return units


class Slave:
    def __init__(self, args, loop):
        self.args = args
        self.loop = loop
        self.devices = {u: KINDS[k](u, loop) for u, k in parse_devices(args.devices).items()}
        self.done = asyncio.Event()
        self.exit_code = 0
        self.stopping = False
        self.server = None
        self.stdin_task = None

    # --- output ----------------------------------------------------------
    @staticmethod
    def emit(obj):
        sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def finish(self, code, why=None):
        if why:
            (log.error if code else log.info)("%s", why)
        if not self.done.is_set():
            self.exit_code = code
            self.done.set()

    # --- control channel -------------------------------------------------
    def handle(self, line):
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict):
                raise ValueError("command must be a JSON object")
            reply = self.dispatch(msg)
            out = {"ok": True}
            out.update(reply)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            out = {"ok": False, "error": str(exc) or exc.__class__.__name__}
        self.emit(out)

    def device(self, msg):
        unit = msg.get("unit")
        if not isinstance(unit, int) or unit not in self.devices:
            raise ValueError(f"no device at unit {unit!r}")
        return self.devices[unit]

    def dispatch(self, msg):
        cmd = msg.get("cmd")
        if cmd == "units":
            return {"units": {str(u): d.kind for u, d in self.devices.items()}}
        if cmd in ("set", "get"):
            dev = self.device(msg)
            table = TABLE_KEYS.get(msg.get("table"))
            if table is None:
                raise ValueError("table must be one of hr, ir, co, di")
            address = int(msg.get("address", 0))
            if cmd == "get":
                count = int(msg.get("count", 1))
                if count < 1 or address < 0 or address + count > dev.sizes[table]:
                    raise ValueError(f"{msg['table']} {address}+{count} outside the device map")
                values = dev.store[table].getValues(address, count)
                return {"values": [int(v) for v in values]}
            values = msg["values"] if "values" in msg else [msg["value"]]
            if not isinstance(values, list) or not values:
                raise ValueError("value/values missing")
            if address < 0 or address + len(values) > dev.sizes[table]:
                raise ValueError(f"{msg['table']} {address}+{len(values)} outside the device map")
            for offset, value in enumerate(values):
                dev.put(table, address + offset, value if table in BIT_TABLES else reg(value))
            return {}
        if cmd == "stats":
            return self.device(msg).stats()
        if cmd in ("co", "lel", "valve", "radar"):
            return self.device(msg).control(msg)
        raise ValueError(f"unknown command {cmd!r}")

    async def read_stdin(self):
        reader = asyncio.StreamReader(limit=1 << 20)
        await self.loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
        )
        while True:
            line = await reader.readline()
            if not line:
                self.finish(0, "stdin closed, exiting")
                return
            line = line.strip()
            if line:
                self.handle(line)

    # --- serial server ---------------------------------------------------
    def make_handler(self):
        slave = self

        class Handler(ModbusSingleRequestHandler):
            def connection_made(self, transport):
                super().connection_made(transport)
                # Drop requests that piled up in the PTY while no device was
                # listening; a powered-off device would never have seen them.
                try:
                    transport.serial.reset_input_buffer()
                except (AttributeError, serial.SerialException, OSError):
                    pass

            def connection_lost(self, call_exc):
                super().connection_lost(call_exc)
                if not slave.stopping:
                    slave.finish(2, f"serial port {slave.args.port} went away ({call_exc})")

        return Handler

    async def run(self):
        context = ModbusServerContext(slaves=dict(self.devices), single=False)
        self.server = await StartAsyncSerialServer(
            context=context,
            framer=ModbusRtuFramer,  # the server's default framer is ASCII
            port=self.args.port,
            baudrate=self.args.baud,
            bytesize=8,
            parity="N",
            stopbits=1,
            timeout=0,
            handler=self.make_handler(),
            ignore_missing_slaves=True,  # absent units stay silent, as on a bus
            broadcast_enable=True,  # unit 0 writes are executed, never answered
            defer_start=True,  # so we know when the port is really open
        )
        try:
            await self.server.start()
        except serial.SerialException as exc:
            self.finish(1, f"cannot open {self.args.port}: {exc}")
        else:
            if self.server.transport is None:
                self.finish(1, f"cannot open {self.args.port}")
            else:
                units = ", ".join(f"{d.kind}={u}" for u, d in self.devices.items())
                log.info("listening on %s at %d baud: %s", self.args.port, self.args.baud, units)
                self.emit({"ready": True})
                # Keep a strong reference: asyncio holds tasks weakly and the
                # stream reader is only weakly held by its protocol, so an
                # unreferenced reader task gets garbage-collected mid-await.
                self.stdin_task = self.loop.create_task(self.read_stdin())
        await self.done.wait()
        self.stopping = True
        for dev in self.devices.values():
            if isinstance(dev, Valve):
                dev.cancel_motion()
        if self.server is not None:
            await self.server.shutdown()
        return self.exit_code


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", required=True, help="serial device or PTY path")
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--devices", required=True, help="kind=unit[,kind=unit...]")
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args()

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="modbus_slave: %(message)s",
        force=True,  # pymodbus installs its own root handler on import
    )
    # pymodbus logs its own orderly shutdown as an error; keep stderr useful.
    logging.getLogger("pymodbus").setLevel(logging.DEBUG if args.verbose else logging.CRITICAL)
    die_with_parent()

    try:
        parse_devices(args.devices)
    except ValueError as exc:
        log.error("%s", exc)
        return 1

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    slave = Slave(args, loop)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, slave.finish, 0, f"signal {sig.name}, exiting")
    try:
        return loop.run_until_complete(slave.run())
    finally:
        # Cancel leftovers (stdin reader, valve motion) so shutdown is quiet.
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()


if __name__ == "__main__":
    sys.exit(main())
