#!/usr/bin/python3
"""An MR60FDA1 / MR60BHA1 stand-in on a serial port, written apart from the hub's TypeScript codec.

It frames reports itself (53 59 ctrl cmd lenH lenL data sum8 54 43, sum8 over every byte before it),
answers the hub's heartbeat and product-information queries like the radar does, and plays a script:

  seeed_radar.py --port /dev/pts/N --script '[{"at": 0, "send": [["presence", 1], ["motion", 2]]}, ...]'

Each step: "at" (ms from start), "send" (named facts: presence 0/1, motion 0/1/2, fall 0/1, heart bpm,
breath per minute, inbed 0/1, distance cm) and/or "raw" (hex bytes written as they are: noise, broken
frames). "every" repeats the step's facts every N ms until the next step. Prints "ready" once the port is
open and "done" after the last step; keeps answering queries until killed.
"""
import argparse
import json
import sys
import threading
import time

import serial

FACTS = {  # name -> (ctrl, cmd, bytes)
    "presence": (0x80, 0x01, 1),
    "motion": (0x80, 0x02, 1),
    "distance": (0x80, 0x04, 2),
    "heart": (0x85, 0x02, 1),
    "breath": (0x81, 0x02, 1),
    "inbed": (0x84, 0x01, 1),
    "fall": (0x83, 0x01, 1),
}


def frame(ctrl, cmd, data):
    body = bytes([0x53, 0x59, ctrl, cmd, len(data) >> 8, len(data) & 0xFF]) + bytes(data)
    return body + bytes([sum(body) & 0xFF, 0x54, 0x43])


def fact(name, value):
    ctrl, cmd, width = FACTS[name]
    return frame(ctrl, cmd, value.to_bytes(width, "big"))


def answer_queries(port, lock, model):
    buf = b""
    while True:
        try:
            chunk = port.read(64)
        except Exception:
            return
        if not chunk:
            continue
        buf += chunk
        while True:
            i = buf.find(b"\x53\x59")
            if i < 0 or len(buf) - i < 9:
                buf = buf[i:] if i >= 0 else b""
                break
            n = (buf[i + 4] << 8) | buf[i + 5]
            end = i + 9 + n
            if len(buf) < end:
                break
            f = buf[i:end]
            buf = buf[end:]
            if f[6 + n] != sum(f[: 6 + n]) & 0xFF or f[-2:] != b"\x54\x43":
                continue
            ctrl, cmd = f[2], f[3]
            with lock:
                if (ctrl, cmd) == (0x01, 0x01):
                    port.write(frame(0x01, 0x01, [0x0F]))
                elif ctrl == 0x02 and 0xA1 <= cmd <= 0xA4:
                    text = {0xA1: model, 0xA2: "ANXIN-TEST", 0xA3: "HW-1", 0xA4: "G60FD-1.0"}[cmd]
                    port.write(frame(0x02, cmd, text.encode()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", required=True)
    ap.add_argument("--script", required=True)
    ap.add_argument("--model", default="MR60FDA1")
    a = ap.parse_args()
    steps = json.loads(a.script)
    port = serial.Serial(a.port, 115200, timeout=0.05)
    lock = threading.Lock()
    threading.Thread(target=answer_queries, args=(port, lock, a.model), daemon=True).start()
    print("ready", flush=True)
    t0 = time.monotonic()
    for k, step in enumerate(steps):
        nxt = steps[k + 1]["at"] if k + 1 < len(steps) else None
        at = step["at"]
        while True:
            delay = t0 + at / 1000 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            with lock:
                if "raw" in step:
                    port.write(bytes.fromhex(step["raw"]))
                for name, value in step.get("send", []):
                    port.write(fact(name, value))
            every = step.get("every")
            if not every or nxt is None or at + every >= nxt:
                break
            at += every
    print("done", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
