#!/usr/bin/env python3
"""Builds sample.pcap, the capture `estuary standalone` reads when given neither -r nor -i.

It is a public home-LAN capture (FTP, HTTP, NTP, LLMNR, SSDP, NetBIOS; see README.md for its
origin and licence) followed by a generated TCP port scan from one LAN host to the router:
SYN to ports 1-300, each answered by RST-ACK, one every 10 ms. That is above the sensor's
local scan threshold, so the run raises one Scan::Port_Scan notice, which the standalone
notice policy sends to the alarm digest.

Usage: make-sample.py BASE.pcap OUT.pcap   (BASE is tests/fixtures/pcaps/mixed-lan-ftp-http.pcap)
"""
import struct
import sys

SCANNER = bytes([192, 168, 0, 10])
TARGET = bytes([192, 168, 0, 1])
PORTS = range(1, 301)
SOURCE_PORT = 40000


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_packet(src_mac, dst_mac, src, dst, sport, dport, seq, ack, flags, ip_id):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 1024, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ip_id, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return dst_mac + src_mac + b"\x08\x00" + ip + tcp


def records(data):
    """(ts_sec, ts_usec, bytes) of every packet in a little-endian microsecond pcap."""
    off = 24
    while off < len(data):
        sec, usec, caplen, _ = struct.unpack("<IIII", data[off : off + 16])
        yield sec, usec, data[off + 16 : off + 16 + caplen]
        off += 16 + caplen


def main(base_path, out_path):
    base = open(base_path, "rb").read()
    if struct.unpack("<IHHiIII", base[:24])[0] != 0xA1B2C3D4 or base[20:24] != b"\1\0\0\0":
        sys.exit(f"{base_path}: expected a little-endian Ethernet pcap")
    macs = {}
    last = 0
    for sec, usec, pkt in records(base):
        last = max(last, sec * 1_000_000 + usec)
        if pkt[12:14] == b"\x08\x00":
            macs.setdefault(pkt[26:30], pkt[6:12])
    scanner_mac, target_mac = macs[SCANNER], macs[TARGET]

    out = bytearray(base)
    t = last + 1_000_000
    for i, port in enumerate(PORTS):
        syn = tcp_packet(scanner_mac, target_mac, SCANNER, TARGET, SOURCE_PORT + i, port,
                         1000 + i, 0, 0x02, 0x1000 + i)
        rst = tcp_packet(target_mac, scanner_mac, TARGET, SCANNER, port, SOURCE_PORT + i,
                         0, 1001 + i, 0x14, 0x2000 + i)
        for pkt, at in ((syn, t), (rst, t + 200)):
            out += struct.pack("<IIII", at // 1_000_000, at % 1_000_000, len(pkt), len(pkt)) + pkt
        t += 10_000
    open(out_path, "wb").write(out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
