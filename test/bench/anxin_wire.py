#!/usr/bin/python3
"""A second, independent implementation of the Anxin wire contract v1 signature, written from
docs/wire-protocol.md ("Canonical form and signature", and "Acks and commands" for what the relay signs),
standard library only.

    /usr/bin/python3 test/bench/anxin_wire.py protocol/test-vectors.json

For every vector it parses the message exactly as published (`wire`), builds the canonical form (for an
ack or a command: with `t` and the hub of its `topic` added), signs it with the base64-decoded key, and
prints `ok <name> ...` or `FAIL <name> ...`; it exits 1 on any mismatch (2 on a bad file). It can also be
imported: canonical(), sign(), verify().
"""
import base64
import binascii
import decimal
import hashlib
import hmac
import json
import math
import sys

MAX_DEPTH = 32
NOT_SIGNED = {"event": ("sig", "historical"), "state": ("sig",), "ack": ("sig",), "cmd": ("sig",)}
# Sent by the relay to one hub: signed with that hub's key, with `t` (the kind) and `hub` (the topic's) added.
RELAY_TO_HUB = ("ack", "cmd")


def _reject_constant(name):
    raise ValueError("%s is not JSON" % name)


def parse(text):
    """A message as received. Every number is an IEEE-754 double (as in JavaScript), so integers are read
    as doubles too; NaN and Infinity are refused; a repeated key keeps its last value."""
    return json.loads(text, parse_int=float, parse_float=float, parse_constant=_reject_constant)


def number(x):
    """ECMAScript Number::toString(x) for a finite double: shortest round-trip digits, then the
    spec's layout (plain from 1e-6 up to below 1e21, else d[.ddd]e±n)."""
    if isinstance(x, bool):
        raise TypeError("not a number")
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        raise ValueError("NaN and Infinity have no canonical form")
    if x == 0:
        return "0"  # -0 too
    sign = "-" if x < 0 else ""
    # repr() gives the shortest digit string that reads back to the same double.
    _, digits, exp = decimal.Decimal(repr(abs(x))).as_tuple()
    digits = list(digits)
    while len(digits) > 1 and digits[-1] == 0:
        digits.pop()
        exp += 1
    s = "".join(str(d) for d in digits)
    k = len(s)
    n = exp + k  # the value is 0.s × 10^n
    if k <= n <= 21:
        out = s + "0" * (n - k)
    elif 0 < n <= 21:
        out = s[:n] + "." + s[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + s
    else:
        e = n - 1
        mant = s if k == 1 else s[0] + "." + s[1:]
        out = mant + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return sign + out


_NAMED = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def string(s):
    """A JSON string: the seven short escapes, other C0 controls and lone surrogates as \\u with four
    lower-case hex digits, everything else (all other non-ASCII included) as itself."""
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch in _NAMED:
            out.append(_NAMED[ch])
        elif c < 0x20 or 0xD800 <= c <= 0xDFFF:
            out.append("\\u%04x" % c)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _utf16_units(key):
    # Big-endian UTF-16 bytes compare exactly as the sequence of UTF-16 code units does.
    return key.encode("utf-16-be", "surrogatepass")


def canonical(value, depth=0):
    """The canonical text of a parsed JSON value (lone surrogates are escaped, so it always encodes as UTF-8)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return number(value)
    if isinstance(value, str):
        return string(value)
    depth += 1
    if depth > MAX_DEPTH:
        raise ValueError("nested deeper than %d levels" % MAX_DEPTH)
    if isinstance(value, list):
        return "[" + ",".join(canonical(v, depth) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value.keys(), key=_utf16_units)
        return "{" + ",".join(string(k) + ":" + canonical(value[k], depth) for k in keys) + "}"
    raise TypeError("not a JSON value: %r" % (value,))


def hub_of_topic(topic):
    """`anxin/v1/{hub}/ack` or `.../cmd` -> hub."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[:2] != ["anxin", "v1"] or parts[3] not in RELAY_TO_HUB or not parts[2]:
        raise ValueError("not an ack or cmd topic: %r" % topic)
    return parts[2]


def signed_bytes(message, kind="event", hub=None):
    rest = {k: v for k, v in message.items() if k not in NOT_SIGNED[kind]}
    if kind in RELAY_TO_HUB:
        if not isinstance(hub, str):
            raise ValueError("an ack or a command is signed together with the hub of its topic")
        rest["t"] = kind
        rest["hub"] = hub
    return canonical(rest).encode("utf-8")


def sign(message, key_b64, kind="event", hub=None):
    key = base64.b64decode(key_b64, validate=True)
    return hmac.new(key, signed_bytes(message, kind, hub), hashlib.sha256).hexdigest()


def verify(message, key_b64, kind="event", hub=None):
    sig = message.get("sig")
    if not isinstance(sig, str) or len(sig) != 64 or sig != sig.lower():
        return False
    try:
        got = binascii.unhexlify(sig)
    except (binascii.Error, ValueError):
        return False
    want = binascii.unhexlify(sign(message, key_b64, kind, hub))
    return hmac.compare_digest(got, want)


def check(vector):
    problems = []
    kind = vector["message"]
    hub = hub_of_topic(vector["topic"]) if kind in RELAY_TO_HUB else None
    msg = parse(vector["wire"])
    data = signed_bytes(msg, kind, hub)
    if data.decode("utf-8") != vector["canonical"]:
        problems.append("canonical differs: %s" % data.decode("utf-8"))
    if data.hex() != vector["canonicalHex"]:
        problems.append("canonical bytes differ")
    sig = sign(msg, vector["keyBase64"], kind, hub)
    if sig != vector["sig"]:
        problems.append("sig differs: %s" % sig)
    if not verify(msg, vector["keyBase64"], kind, hub):
        problems.append("the sig in the wire message does not verify")
    tampered = dict(msg, sig="%02x" % (int(msg["sig"][:2], 16) ^ 1) + msg["sig"][2:])
    if verify(tampered, vector["keyBase64"], kind, hub):
        problems.append("a changed sig still verifies")
    if kind in RELAY_TO_HUB:
        # Good for this hub and this kind of message only.
        if verify(msg, vector["keyBase64"], kind, hub + "x"):
            problems.append("it also verifies for another hub")
        other = "cmd" if kind == "ack" else "ack"
        if verify(msg, vector["keyBase64"], other, hub):
            problems.append("it also verifies as %s" % other)
        unsigned = {k: v for k, v in msg.items() if k != "sig"}
        if verify(unsigned, vector["keyBase64"], kind, hub):
            problems.append("it verifies without its sig")
        # Every member is signed: a command for another device (or any other change) does not verify.
        for k, v in msg.items():
            if k != "sig" and isinstance(v, str) and verify(dict(msg, **{k: v + "x"}), vector["keyBase64"], kind, hub):
                problems.append("it still verifies with %s changed" % k)
    return problems


def main(argv):
    if len(argv) != 2:
        print("usage: anxin_wire.py protocol/test-vectors.json", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            vectors = json.load(f)["vectors"]
    except (OSError, ValueError, KeyError) as e:
        print("cannot read vectors: %s" % e, file=sys.stderr)
        return 2
    failed = 0
    for v in vectors:
        problems = check(v)
        if problems:
            failed += 1
            print("FAIL %s: %s" % (v["name"], "; ".join(problems)))
        else:
            print("ok   %s canonical (%d bytes) and sig %s match" % (v["name"], len(v["canonicalHex"]) // 2, v["sig"][:16]))
    print("%d of %d vectors match" % (len(vectors) - failed, len(vectors)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
