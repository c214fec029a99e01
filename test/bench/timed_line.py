#!/usr/bin/python3
"""A timed, fault-injecting RS-485 line between the hub and the bench slave.

A PTY pair by itself delivers a whole frame in one read, instantly, at any
baud; real hubs see bytes trickle in at ~1 ms each at 9600. This process sits
in the middle and gives the hub a line that behaves like copper:

    hub (Modbus master)                                   modbus_slave.py
        |                                                       |
    --master-link  (symlink -> /dev/pts/N, a PTY this          socat's other
        |           script creates and owns)                    end (ttyB)
        |                                                       |
    [ timed_line.py ] <---- --slave-port (one end of a ----> [ socat ]
                             socat PTY pair, e.g. ttyS2)

    socat pty,raw,echo=0,link=DIR/ttyS2 pty,raw,echo=0,link=DIR/ttyB &
    modbus_slave.py --port DIR/ttyB --devices co=1 &
    timed_line.py --master-link DIR/ttyM --slave-port DIR/ttyS2 --baud 9600
    # the hub opens DIR/ttyM

Both the hub side and the slave side are plain PTY paths, so neither end
needs to know the line is there.

Timing, both directions: a frame ends after a t3.5 idle gap (3.5 characters
of 10 bits, at least 2 ms so scheduler jitter cannot split frames; 1.75 ms
above 19200 baud per the spec, raised to the same floor); the frame is then
re-emitted one byte at a time, byte k at start + (k+1) * 10/baud s, i.e. when
its stop bit would have arrived. Content is never changed master->slave.

Faults apply to slave->master frames (replies). Control: one JSON object per
line on stdin, one JSON reply line on stdout each; {"ready":true} first.

  {"fault":"crc","count":1}            flip the last CRC byte of the next N replies
  {"fault":"drop","count":1}           swallow the next N replies
  {"fault":"late","ms":700,"count":1}  deliver the next N replies that late
  {"fault":"noise","count":1}          prefix the next N replies with 00 FF
  {"fault":"none"}                     cancel a pending fault
  {"cmd":"stats"}                      frame/byte counts and faults applied
  {"cmd":"unplug"}                     hub-side PTY vanishes (closed, link removed)
  {"cmd":"replug"}                     a new hub-side PTY at the same link path

Exit status 0 on stdin EOF or SIGTERM (the link is removed), 1 on a
start-up error. If the slave port disappears the line keeps retrying it, so
socat can be restarted underneath.
"""

import argparse
import ctypes
import errno
import json
import os
import select
import signal
import sys
import time
import tty

FAULTS = ("crc", "drop", "late", "noise")


def log(msg):
    sys.stderr.write(f"timed_line: {msg}\n")
    sys.stderr.flush()


def die_with_parent():
    """Ask the kernel to SIGTERM us if the spawning process dies (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Stop(Exception):
    pass


class Assembler:
    """Collects bytes until the line has been idle for t3.5."""

    def __init__(self, t35):
        self.t35 = t35
        self.buf = bytearray()
        self.last = 0.0

    def feed(self, data, now):
        self.buf += data
        self.last = now

    def deadline(self):
        return self.last + self.t35 if self.buf else None

    def take(self, now):
        if self.buf and now >= self.last + self.t35:
            frame, self.buf = bytes(self.buf), bytearray()
            return frame
        return None

    def clear(self):
        self.buf = bytearray()


class Pacer:
    """Writes queued frames one byte per character time, frames never overlap."""

    def __init__(self, tbyte):
        self.tbyte = tbyte
        self.queue = []  # (earliest start, frame), kept sorted by start
        self.frame = None
        self.start = 0.0
        self.sent = 0
        self.free_at = 0.0  # when the line is idle again

    def push(self, start, frame):
        self.queue.append((start, frame))
        self.queue.sort(key=lambda item: item[0])

    def clear(self):
        self.queue, self.frame, self.sent = [], None, 0

    def _next_frame(self):
        if self.frame is None and self.queue:
            start, self.frame = self.queue.pop(0)
            self.start = max(start, self.free_at)
            self.sent = 0

    def due(self):
        self._next_frame()
        if self.frame is None:
            return None
        return self.start + (self.sent + 1) * self.tbyte

    def pump(self, now, write):
        """Write every byte whose time has come; write(bytes) -> count written."""
        while True:
            self._next_frame()
            if self.frame is None:
                return
            upto = int((now - self.start) / self.tbyte)  # bytes fully "on the wire"
            upto = min(upto, len(self.frame))
            if upto <= self.sent:
                return
            want = upto - self.sent
            n = write(self.frame[self.sent:upto])
            self.sent += n
            if n < want:  # PTY buffer full: retry on the next turn
                return
            if self.sent >= len(self.frame):
                self.free_at = self.start + len(self.frame) * self.tbyte
                self.frame = None


class Line:
    def __init__(self, args):
        self.args = args
        self.tbyte = 10.0 / args.baud  # 8N1: start + 8 data + stop
        t35 = 3.5 * self.tbyte if args.baud <= 19200 else 0.00175
        self.t35 = max(0.002, t35)
        self.hub_master = None  # our end of the hub-side PTY
        self.hub_slave = None  # kept open so our end never reads EIO when the hub closes
        self.dev = None  # the --slave-port fd
        self.dev_retry_at = 0.0
        self.dev_warned = False
        self.rx_m2s = Assembler(self.t35)
        self.rx_s2m = Assembler(self.t35)
        self.tx_m2s = Pacer(self.tbyte)
        self.tx_s2m = Pacer(self.tbyte)
        self.fault = None  # {"kind":..., "remaining":..., "ms":...}
        self.stdin_buf = b""
        self.stats = {
            "m2s_frames": 0, "s2m_frames": 0, "m2s_bytes": 0, "s2m_bytes": 0,
            "m2s_lost": 0, "s2m_lost": 0,
            "faults": {k: 0 for k in FAULTS},
        }

    # --- hub side ------------------------------------------------------------
    def plug(self):
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo / line editing before the hub configures it
        os.set_blocking(master, False)
        link = self.args.master_link
        tmp = f"{link}.{os.getpid()}.tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, link)  # atomic: the hub never sees a half-made link
        self.hub_master, self.hub_slave = master, slave
        log(f"hub side {link} -> {os.ttyname(slave)}")

    def unplug(self):
        if self.hub_master is None:
            return False
        for fd in (self.hub_master, self.hub_slave):
            os.close(fd)
        self.hub_master = self.hub_slave = None
        try:
            os.unlink(self.args.master_link)
        except FileNotFoundError:
            pass
        self.rx_m2s.clear()
        self.tx_s2m.clear()
        return True

    # --- slave side ------------------------------------------------------------
    def open_dev(self, now):
        try:
            fd = os.open(self.args.slave_port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            if not self.dev_warned:
                log(f"slave port {self.args.slave_port} unavailable ({exc.strerror}), retrying")
                self.dev_warned = True
            self.dev_retry_at = now + 0.1
            return
        try:
            tty.setraw(fd)
        except OSError:
            pass
        self.dev = fd
        if self.dev_warned:
            log(f"slave port {self.args.slave_port} back")
        self.dev_warned = False

    def lose_dev(self, why, now):
        log(f"slave port lost ({why}), retrying")
        os.close(self.dev)
        self.dev = None
        self.dev_warned = True
        self.dev_retry_at = now + 0.1
        self.rx_s2m.clear()
        self.tx_m2s.clear()

    # --- writers -------------------------------------------------------------
    @staticmethod
    def _write(fd, data):
        try:
            return os.write(fd, data)
        except BlockingIOError:
            return 0

    def write_hub(self, data):
        if self.hub_master is None:
            return len(data)  # nobody there: the bytes fall on the floor
        try:
            return self._write(self.hub_master, data)
        except OSError:
            return len(data)

    def write_dev(self, data):
        if self.dev is None:
            return len(data)
        try:
            return self._write(self.dev, data)
        except OSError as exc:
            self.lose_dev(exc.strerror, time.monotonic())
            return len(data)

    # --- frames ----------------------------------------------------------------
    def on_m2s_frame(self, frame, now):
        self.stats["m2s_frames"] += 1
        self.stats["m2s_bytes"] += len(frame)
        if self.dev is None:
            self.stats["m2s_lost"] += 1
            return
        self.tx_m2s.push(now, frame)

    def on_s2m_frame(self, frame, now):
        self.stats["s2m_frames"] += 1
        self.stats["s2m_bytes"] += len(frame)
        if self.hub_master is None:
            self.stats["s2m_lost"] += 1
            return
        start = now
        fault = self.fault
        if fault is not None:
            kind = fault["kind"]
            self.stats["faults"][kind] += 1
            fault["remaining"] -= 1
            if fault["remaining"] <= 0:
                self.fault = None
            if kind == "drop":
                return
            if kind == "crc":
                frame = frame[:-1] + bytes([frame[-1] ^ 0xFF])
            elif kind == "noise":
                frame = b"\x00\xff" + frame
            elif kind == "late":
                start = now + fault["ms"] / 1000.0
        self.tx_s2m.push(start, frame)

    # --- control -----------------------------------------------------------------
    def control(self, msg):
        if not isinstance(msg, dict):
            raise ValueError("command must be a JSON object")
        if "fault" in msg:
            kind = msg["fault"]
            if kind == "none":
                self.fault = None
                return {}
            if kind not in FAULTS:
                raise ValueError(f"fault must be one of none, {', '.join(FAULTS)}")
            count = int(msg.get("count", 1))
            if count < 1:
                raise ValueError("count must be >= 1")
            fault = {"kind": kind, "remaining": count}
            if kind == "late":
                if "ms" not in msg:
                    raise ValueError("late needs ms")
                fault["ms"] = float(msg["ms"])
            self.fault = fault
            return {"fault": kind, "remaining": count}
        cmd = msg.get("cmd")
        if cmd == "stats":
            out = dict(self.stats)
            out["faults"] = dict(self.stats["faults"])
            out["pending_fault"] = dict(self.fault) if self.fault else None
            out["plugged"] = self.hub_master is not None
            out["slave_port_open"] = self.dev is not None
            out["t35_ms"] = round(self.t35 * 1000, 3)
            out["byte_ms"] = round(self.tbyte * 1000, 3)
            return out
        if cmd == "unplug":
            return {"was_plugged": self.unplug()}
        if cmd == "replug":
            if self.hub_master is not None:
                self.unplug()
            self.plug()
            return {}
        raise ValueError(f"unknown command {msg!r}")

    @staticmethod
    def emit(obj):
        sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def on_stdin(self):
        data = os.read(0, 65536)
        if not data:
            raise Stop("stdin closed")
        self.stdin_buf += data
        while b"\n" in self.stdin_buf:
            line, self.stdin_buf = self.stdin_buf.split(b"\n", 1)
            if not line.strip():
                continue
            try:
                out = {"ok": True}
                out.update(self.control(json.loads(line)))
            except (ValueError, TypeError, OSError) as exc:
                out = {"ok": False, "error": str(exc)}
            self.emit(out)

    # --- main loop ---------------------------------------------------------------
    def run(self):
        self.plug()
        self.open_dev(time.monotonic())
        log(f"baud {self.args.baud}: byte {self.tbyte * 1000:.3f} ms, t3.5 {self.t35 * 1000:.3f} ms")
        self.emit({"ready": True})
        while True:
            now = time.monotonic()
            if self.dev is None and now >= self.dev_retry_at:
                self.open_dev(now)
            deadlines = [
                self.rx_m2s.deadline(), self.rx_s2m.deadline(),
                self.tx_m2s.due(), self.tx_s2m.due(),
                self.dev_retry_at if self.dev is None else None,
            ]
            deadlines = [d for d in deadlines if d is not None]
            timeout = max(0.0, min(deadlines) - now) if deadlines else None
            fds = [0] + [fd for fd in (self.hub_master, self.dev) if fd is not None]
            readable, _, _ = select.select(fds, [], [], timeout)
            now = time.monotonic()
            if 0 in readable:
                self.on_stdin()
            if self.hub_master is not None and self.hub_master in readable:
                try:
                    data = os.read(self.hub_master, 4096)
                    if data:
                        self.rx_m2s.feed(data, now)
                except BlockingIOError:
                    pass
                except OSError:
                    pass  # cannot happen while we hold the slave end; ignore
            if self.dev is not None and self.dev in readable:
                try:
                    data = os.read(self.dev, 4096)
                    if data:
                        self.rx_s2m.feed(data, now)
                    else:
                        self.lose_dev("EOF", now)
                except BlockingIOError:
                    pass
                except OSError as exc:
                    if exc.errno in (errno.EIO, errno.ENXIO, errno.EBADF):
                        self.lose_dev(exc.strerror, now)
                    else:
                        raise
            frame = self.rx_m2s.take(now)
            if frame:
                self.on_m2s_frame(frame, now)
            frame = self.rx_s2m.take(now)
            if frame:
                self.on_s2m_frame(frame, now)
            self.tx_m2s.pump(now, self.write_dev)
            self.tx_s2m.pump(now, self.write_hub)

    def close(self):
        self.unplug()
        if self.dev is not None:
            os.close(self.dev)
            self.dev = None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--master-link", required=True, help="symlink path the hub opens")
    parser.add_argument("--slave-port", required=True, help="PTY path towards the slave")
    parser.add_argument("--baud", type=int, default=9600)
    args = parser.parse_args()
    if args.baud < 50:
        log("baud too low")
        return 1
    die_with_parent()

    def on_signal(signum, _frame):
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    line = Line(args)
    try:
        line.run()
    except Stop as why:
        log(f"{why}, exiting")
    except OSError as exc:
        log(f"fatal: {exc}")
        line.close()
        return 1
    line.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
