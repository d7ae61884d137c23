#!/usr/bin/env python3
"""Writes a synthetic zeekctl-layout conn.log archive, uncompressed, for the query benchmark:
OUT/YYYY-MM-DD/conn.HH:00:00-HH:00:00.log, one file per hour, Zeek's 22-column conn.log header.

    bench/query-gen.py OUT [--mb 2200] [--hours 48] [--start 2026-11-02]

About 1 row in 1000 goes to the watched address 203.0.113.7 (the benchmark's filter). Times are
UTC; run the queries with TZ=UTC so that archive names and --from/--to agree.
"""
import argparse
import datetime as dt
import os
import random

FIELDS = ("ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration orig_bytes "
          "resp_bytes conn_state local_orig local_resp missed_bytes history orig_pkts "
          "orig_ip_bytes resp_pkts resp_ip_bytes tunnel_parents ip_proto").split()
TYPES = ("time string addr port addr port enum string interval count count string bool bool "
         "count string count count count count set[string] count").split()
WATCHED = "203.0.113.7"


def header(open_time: dt.datetime) -> str:
    stamp = open_time.strftime("%Y-%m-%d-%H-%M-%S")
    return ("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
            f"#path\tconn\n#open\t{stamp}\n#fields\t" + "\t".join(FIELDS) + "\n#types\t"
            + "\t".join(TYPES) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--mb", type=int, default=2200)
    ap.add_argument("--hours", type=int, default=48)
    ap.add_argument("--start", default="2026-11-02")
    args = ap.parse_args()
    rng = random.Random(7)
    start = dt.datetime.fromisoformat(args.start).replace(tzinfo=dt.timezone.utc)
    per_file = args.mb * 1_000_000 // args.hours
    inside = [f"10.{a}.{b}.{c}" for a in range(4) for b in range(16) for c in range(1, 64)]
    outside = [f"198.51.100.{i}" for i in range(256)] + [f"192.0.2.{i}" for i in range(256)]
    services = [("tcp", "443", "ssl"), ("tcp", "80", "http"), ("udp", "53", "dns"),
                ("tcp", "22", "ssh"), ("tcp", "8080", "-"), ("udp", "123", "-")]
    states = ["SF", "S0", "REJ", "RSTO", "SH", "OTH"]
    histories = ["ShADadFf", "S", "ShR", "Dd", "ShADadR", "ShAdDaFf"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    for hour in range(args.hours):
        open_time = start + dt.timedelta(hours=hour)
        close_time = open_time + dt.timedelta(hours=1)
        folder = os.path.join(args.out, open_time.strftime("%Y-%m-%d"))
        os.makedirs(folder, exist_ok=True)
        name = f"conn.{open_time:%H:%M:%S}-{close_time:%H:%M:%S}.log"
        base = int(open_time.timestamp())
        rows = []
        size = 0
        while size < per_file:
            # Connections are logged when they end, so a few start before the file opened.
            ts = base + rng.random() * 3600 - (rng.random() * 600 if rng.random() < 0.02 else 0)
            proto, port, service = rng.choice(services)
            resp = WATCHED if rng.random() < 0.001 else rng.choice(outside)
            uid = "C" + "".join(rng.choices(alphabet, k=17))
            if rng.random() < 0.3:
                duration = orig = resp_b = "-"
            else:
                duration = f"{rng.random() * 30:.6f}"
                orig = str(rng.randrange(100000))
                resp_b = str(rng.randrange(1000000))
            pkts = rng.randrange(1, 200)
            row = "\t".join((f"{ts:.6f}", uid, rng.choice(inside), str(rng.randrange(1024, 65535)),
                             resp, port, proto, service, duration, orig, resp_b,
                             rng.choice(states), "T", "F", "0", rng.choice(histories), str(pkts),
                             str(pkts * 60), str(pkts), str(pkts * 400), "-",
                             "17" if proto == "udp" else "6"))
            rows.append(row)
            size += len(row) + 1
        with open(os.path.join(folder, name), "w") as f:
            f.write(header(open_time))
            f.write("\n".join(rows))
            f.write("\n#close\t" + close_time.strftime("%Y-%m-%d-%H-%M-%S") + "\n")


if __name__ == "__main__":
    main()
