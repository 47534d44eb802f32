#!/usr/bin/env python3
"""Writes the seed corpus of the ppp_input fuzz target (fuzz/corpus/ppp_input/seed-*).

Input layout (see crates/ppp/src/fuzzing.rs): one configuration octet, then the
peer's byte stream. Configuration: bit 0 = receive ACCM 0, bits 1-2 = max_info
1500/64/4/0, bits 3-7 = where the stream is cut into two reads (32nds).

Seeds: chunks of the real pppd 2.4.9 streams in ../shared/vectors (the
project's shared/vectors), plus hand-made edge cases. Run from the repository
root: python3 fuzz/make_seed_corpus.py
"""
import os
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS = ROOT.parent / "shared" / "vectors" / "pppd-2.4.9"
OUT = ROOT / "fuzz" / "corpus" / "ppp_input"

RX_ACCM_0 = 0x01
MAX_64 = 0x02
MAX_4 = 0x04
MAX_0 = 0x06


def cut(n):
    return (n & 31) << 3


def fcs16(data, fcs=0xFFFF):
    for b in data:
        fcs ^= b
        for _ in range(8):
            fcs = (fcs >> 1) ^ 0x8408 if fcs & 1 else fcs >> 1
    return fcs


def frame(body, accm=0xFFFFFFFF, fcs_ok=True):
    """RFC 1662 frame of `body` (address..info) with FCS, escaped, between flags."""
    fcs = fcs16(body) ^ 0xFFFF
    if not fcs_ok:
        fcs ^= 0x0101
    data = bytes(body) + struct.pack("<H", fcs)
    out = bytearray([0x7E])
    for b in data:
        if b in (0x7D, 0x7E) or (b < 0x20 and accm & (1 << b)):
            out += bytes([0x7D, b ^ 0x20])
        else:
            out.append(b)
    out.append(0x7E)
    return bytes(out)


def control(protocol, code, ident, data, acfc=False):
    pkt = bytes([code, ident]) + struct.pack(">H", 4 + len(data)) + data
    head = b"" if acfc else b"\xff\x03"
    return head + struct.pack(">H", protocol) + pkt


def opt(kind, data):
    return bytes([kind, 2 + len(data)]) + data


LCP, IPCP, IPV6CP = 0xC021, 0x8021, 0x8057


def read_stream(path):
    chunks = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        chunks.append(bytes.fromhex(line.split()[3]))
    return chunks


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("seed-*"):
        old.unlink()
    seeds = {}

    # Real streams: the negotiation (first chunks, default receive ACCM),
    # the rest (receive ACCM 0), and the whole stream cut in the middle.
    for scenario in sorted(p for p in VECTORS.iterdir() if p.is_dir()):
        for name in ("stream-a-to-b.hex", "stream-b-to-a.hex"):
            chunks = read_stream(scenario / name)
            tag = f"{scenario.name}-{name[7:13]}"
            seeds[f"pppd-{tag}-start"] = bytes([0]) + b"".join(chunks[:3])
            seeds[f"pppd-{tag}-rest"] = bytes([RX_ACCM_0 | cut(7)]) + b"".join(chunks[3:])
            seeds[f"pppd-{tag}-whole"] = bytes([RX_ACCM_0 | cut(16)]) + b"".join(chunks)

    good = frame(control(LCP, 9, 1, b"\x01\x02\x03\x04"))
    confreq_options = opt(1, b"\x05\xdc") + opt(2, b"\0\0\0\0") + opt(5, b"\x12\x34\x56\x78") + opt(7, b"") + opt(8, b"")
    edge = {
        "bad-fcs": frame(control(LCP, 1, 1, confreq_options), fcs_ok=False) + good,
        "aborted": b"\x7e\xff\x7d\x23\xc0\x21\x7d\x21\x7d\x7e" + good,
        "too-short": b"\x7e\xff\x7d\x23\xc0\x7e" + good,
        "no-protocol": frame(b"\xff\x03") + good,
        "bad-address-control": frame(b"\xff\x13\xc0\x21\x09\x01\x00\x04") + good,
        "bad-protocol-even": frame(b"\xff\x03\x00\x20\x45\x00") + good,
        "noise-before-flag": b"Last login: yesterday\r\n" + good,
        "xon-xoff-inserted": good[:5] + b"\x11" + good[5:9] + b"\x13" + good[9:],
        "escaped-escape": frame(b"\x21\x7d\x5d", accm=0),
        "flags-only": b"\x7e" * 16,
        "escape-at-end": b"\x7e\xff\x7d",
        "lcp-confreq-100-options": frame(control(LCP, 1, 1, opt(7, b"") * 100)),
        "lcp-confreq-option-len0": frame(control(LCP, 1, 1, b"\x01\x00\x05\xdc")),
        "lcp-confreq-option-len1": frame(control(LCP, 1, 1, b"\x05\x01\x12\x34\x56\x78")),
        "lcp-confreq-option-len255": frame(control(LCP, 1, 1, b"\x05\xff" + bytes(20))),
        "lcp-confreq-length-over-frame": frame(b"\xff\x03\xc0\x21\x01\x01\x01\x00\x01\x04\x05\xdc"),
        "lcp-confreq-unknown-option": frame(control(LCP, 1, 1, opt(0x42, b"abc") + confreq_options)),
        "lcp-confreq-mru-huge": frame(control(LCP, 1, 1, opt(1, b"\xff\xff") + opt(3, b"\xc2\x23\x05"))),
        "lcp-confreq-auth-pap": frame(control(LCP, 1, 1, opt(3, b"\xc0\x23") + opt(5, b"\x01\x02\x03\x04"))),
        "lcp-termreq": frame(control(LCP, 5, 2, b"User request")),
        "lcp-code-reject": frame(control(LCP, 7, 3, b"\x0c\x01\x00\x04")),
        "lcp-protocol-reject": frame(control(LCP, 8, 4, b"\x80\x57\x01\x01\x00\x04")),
        "lcp-unknown-code": frame(control(LCP, 0x42, 5, b"xyz")),
        "lcp-identification": frame(control(LCP, 12, 6, b"\x01\x02\x03\x04pppd 2.4.9")),
        "lcp-echo-req-short": frame(control(LCP, 9, 7, b"")),
        "unknown-protocol": frame(b"\xff\x03\x80\x2b\x01\x01\x00\x04"),
        "ip-before-ipcp": frame(b"\x21\x45\x00\x00\x14" + bytes(16), accm=0),
        "ipcp-confreq-dns": frame(control(IPCP, 1, 1, opt(3, b"\0\0\0\0") + opt(129, b"\0\0\0\0") + opt(131, b"\0\0\0\0"), acfc=True)),
        "ipcp-confreq-bad-len": frame(control(IPCP, 1, 1, b"\x03\x05\x0a\x00\x00", acfc=True)),
        "ipv6cp-confreq": frame(control(IPV6CP, 1, 1, opt(1, bytes(range(1, 9))), acfc=True)),
        "ipv6cp-confreq-zero-id": frame(control(IPV6CP, 1, 1, opt(1, bytes(8)), acfc=True)),
    }
    for name, stream in edge.items():
        seeds[f"edge-{name}"] = bytes([0]) + stream
    # A few of them under other configurations.
    seeds["edge-too-long-max4"] = bytes([MAX_4]) + good + good
    seeds["edge-too-long-max0"] = bytes([MAX_0 | cut(3)]) + edge["lcp-termreq"]
    seeds["edge-max64-100-options"] = bytes([MAX_64 | RX_ACCM_0]) + edge["lcp-confreq-100-options"] + good
    seeds["edge-empty"] = b""
    seeds["edge-config-only"] = b"\xff"

    assert len(seeds) < 200
    for name, data in seeds.items():
        (OUT / f"seed-{name}").write_bytes(data)
    print(f"wrote {len(seeds)} seeds to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
