#!/usr/bin/env python3
"""Receiver-only load like the shared harness's blast.py, with every message built up front.

Same command line, same bytes on the wire and same JSON report as blast.py: N RFC 5424 messages
("<190>1 TIMESTAMP HOST bro_conn - - - " + the gen.py conn.log-style line whose uid carries the
sequence number), octet-counted (RFC 6587) or LF framed, over one TCP connection to 127.0.0.1:PORT.

The difference: with --rate 0 all N messages are built BEFORE the connection is opened and the clock
(first_send_ns) starts, then sent with a few large sendall() calls, so the sender costs only the
kernel's copy and is not the limit of the receiver under test (blast.py formats every message while
sending and tops out near 1M messages/s on this machine). The `ts` field and the header timestamp
are therefore build time, not send time: latency is meaningless in this mode (run.py measures none
with --rate 0). With --rate > 0 messages are built per tick at send time, exactly as blast.py does.

It must sit beside the harness's gen.py (bench/run-estuary.sh copies the harness to a scratch
directory and drops this file in there as blast.py, so run.py starts it).

--sink sends into a discard reader forked by this script instead of --port: the generator's own
ceiling on this machine.
"""
import argparse, json, os, resource, socket, sys, time
from gen import make_tails

CHUNK = 8 << 20  # bytes per sendall(); big enough that Python's per-call cost vanishes


def cpu_s():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Builder:
    """blast.py's message format: header and ts stamped once per batch, uid = C + 17-digit seq."""

    def __init__(self, octet):
        self.tails = make_tails(4096)
        self.mask = len(self.tails) - 1
        self.host = socket.gethostname()
        self.octet = octet

    def build(self, lo, hi):
        t = time.time_ns()
        ts = "%d.%06d" % (t // 1_000_000_000, (t // 1000) % 1_000_000)
        hdr = "<190>1 %s %s bro_conn - - - " % (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t / 1e9)) +
                                                  ".%06dZ" % ((t // 1000) % 1_000_000), self.host)
        tails, mask, out = self.tails, self.mask, []
        for q in range(lo, hi):
            m = ("%s%s\tC%017d\t%s" % (hdr, ts, q, tails[q & mask][:-1])).encode()
            out.append(b"%d %s" % (len(m), m) if self.octet else m + b"\n")
        return t, b"".join(out)


def prebuild(builder, count, batch):
    """All messages as a list of ~CHUNK-byte buffers."""
    chunks, pending, size = [], [], 0
    for lo in range(0, count, batch):
        _, buf = builder.build(lo, min(count, lo + batch))
        pending.append(buf)
        size += len(buf)
        if size >= CHUNK:
            chunks.append(b"".join(pending))
            pending, size = [], 0
    if pending:
        chunks.append(b"".join(pending))
    return chunks


def discard_sink():
    """Forks a reader that discards everything; returns (port, pid, pipe fd for its byte count)."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))  # loopback only
    ls.listen(1)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        conn, _ = ls.accept()
        buf, n = bytearray(4 << 20), 0
        while True:
            k = conn.recv_into(buf)
            if not k:
                break
            n += k
        os.write(w, str(n).encode())
        os._exit(0)
    os.close(w)
    port = ls.getsockname()[1]
    ls.close()
    return port, pid, r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--framing", choices=["octet", "lf"], default="octet")
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--sink", action="store_true", help="send into a forked discard reader (generator ceiling)")
    a = ap.parse_args()
    if (a.port is None) == (not a.sink):
        ap.error("give exactly one of --port and --sink")
    builder = Builder(a.framing == "octet")
    report = {"generator": "blast_prebuilt" if a.rate <= 0 else "blast_prebuilt (paced: built at send time)"}

    chunks = None
    if a.rate <= 0:
        b0 = time.monotonic()
        chunks = prebuild(builder, a.count, a.batch)
        report["build_s"] = round(time.monotonic() - b0, 3)
        report["bytes"] = sum(map(len, chunks))

    sink = discard_sink() if a.sink else None
    s = socket.create_connection(("127.0.0.1", sink[0] if sink else a.port))  # loopback only
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    cpu0 = cpu_s()
    first = None
    if chunks is not None:
        first = time.time_ns()
        for c in chunks:
            s.sendall(c)
    else:
        seq, end = 0, a.count
        t0 = time.monotonic()
        while seq < end:
            due = min(end, int((time.monotonic() - t0) * a.rate) + 1)
            if due > seq:
                t, buf = builder.build(seq, due)
                first = first or t
                s.sendall(buf)
                seq = due
            d = t0 + seq / a.rate - time.monotonic()
            if d > 0:
                time.sleep(min(d, 0.001))
    last = time.time_ns()
    s.shutdown(socket.SHUT_WR)
    s.close()
    report["send_cpu_s"] = round(cpu_s() - cpu0, 3)
    if sink:
        _, pid, r = sink
        os.waitpid(pid, 0)
        done = time.time_ns()
        report["sink_bytes"] = int(os.read(r, 64) or b"0")
        report["sink_rate"] = a.count / max(1e-9, (done - first) / 1e9)
        os.close(r)
    report.update({"first_send_ns": first, "last_send_ns": last, "count": a.count,
                   "rate_achieved": a.count / max(1e-9, (last - first) / 1e9), "cpu_s": cpu_s()})
    print(json.dumps(report))


if __name__ == "__main__":
    main()
