use super::*;
use crate::zeeklog::Value;
use proptest::prelude::*;

fn engine(max_conns: usize) -> Engine {
    let cfg = TrackerConfig {
        max_conns,
        ..TrackerConfig::default()
    };
    Engine::with_uids(cfg, Arc::new(Dispatcher::all()), UidGen::seeded(7))
}

/// An Ethernet/IPv4/UDP frame with a zero (unchecked) UDP checksum.
fn udp_frame(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (28 + payload.len()) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = !decode::checksum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// An Ethernet/IPv4/TCP frame without a valid checksum (engines here ignore checksums).
#[allow(clippy::too_many_arguments)]
fn tcp_frame(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    flags: u8,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (40 + payload.len()) as u16;
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, 6, 0, 0];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// The first row whose column `col` equals `value`.
fn row(rows: &[Vec<Value>], col: usize, value: Value) -> &[Value] {
    rows.iter()
        .find(|r| r[col] == value)
        .expect("a row with that value")
}

/// The outer connection carries the tunnel's service; the inner one (to port 6000) names it
/// in `tunnel_parents`.
fn assert_tunnelled(outer: &[Value], rows: &[Vec<Value>], service: &str) {
    assert_eq!(outer[7], Value::Str(service.into()));
    let inner = row(rows, 5, Value::Port(6000));
    assert_eq!(inner[20], Value::List(vec![outer[1].clone()]));
}

fn conn_rows(e: &mut Engine) -> Vec<Vec<Value>> {
    e.take_records()
        .into_iter()
        .filter(|r| r.record().path() == "conn")
        .map(|r| r.record().values())
        .collect()
}

proptest! {
    #[test]
    fn arbitrary_frames_never_panic(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..120), 1..40), lt in prop_oneof![Just(0), Just(1), Just(101), Just(113), Just(276)]) {
        let mut e = engine(16);
        for (i, f) in frames.iter().enumerate() {
            e.packet(1000.0 + i as f64, Linktype(lt), f, f.len());
        }
        e.finish();
        let _ = e.take_records();
    }

    #[test]
    fn mutated_udp_frames_never_panic(flips in proptest::collection::vec((0usize..60, any::<u8>()), 0..8), cut in 0usize..60) {
        let mut f = udp_frame([10, 0, 0, 1], 1234, [10, 0, 0, 2], 53, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x00\x00\x01\x00\x01");
        for (at, b) in flips {
            if let Some(x) = f.get_mut(at) { *x = b; }
        }
        f.truncate(cut.max(1));
        let mut e = engine(16);
        e.packet(1.0, Linktype::ETHERNET, &f, f.len() + 3);
        e.finish();
        let _ = e.take_records();
    }
}

#[test]
fn udp_inactivity_splits_flows_in_packet_time() {
    let mut e = engine(100);
    let f = udp_frame([10, 0, 0, 1], 1234, [10, 0, 0, 2], 9999, b"abcd");
    e.packet(100.0, Linktype::ETHERNET, &f, f.len());
    e.packet(130.0, Linktype::ETHERNET, &f, f.len());
    assert!(conn_rows(&mut e).is_empty(), "still active after 30 s");
    // 61 s of silence: the first flow times out (1 min) before the next packet is seen.
    e.packet(191.0, Linktype::ETHERNET, &f, f.len());
    let rows = conn_rows(&mut e);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], Value::Time(Timestamp(100.0)));
    assert_eq!(rows[0][8], Value::Interval(30.0));
    assert_eq!(rows[0][16], Value::Count(2));
    e.finish();
    let rows = conn_rows(&mut e);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], Value::Time(Timestamp(191.0)));
    assert_eq!(rows[0][11], Value::Str("S0".into()));
}

#[test]
fn unanswered_syn_ends_after_the_attempt_delay() {
    let cfg = TrackerConfig {
        ignore_checksums: true,
        ..TrackerConfig::default()
    };
    let mut e = Engine::with_uids(cfg, Arc::new(Dispatcher::none()), UidGen::seeded(1));
    let syn = tcp_frame([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80, 0x02, 100, 0, b"");
    // Retransmissions at +1 s and +3 s belong to the attempt; the one at +9 s comes after
    // the 5 s attempt timer removed it, so it starts a new connection.
    for t in [0.0, 1.0, 3.0, 9.0] {
        e.packet(1000.0 + t, Linktype::ETHERNET, &syn, syn.len());
    }
    let first = conn_rows(&mut e);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0][11], Value::Str("S0".into()));
    assert_eq!(first[0][15], Value::Str("S".into()));
    assert_eq!(first[0][16], Value::Count(3));
    assert_eq!(first[0][8], Value::Interval(3.0));
    e.finish();
    let second = conn_rows(&mut e);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0][0], Value::Time(Timestamp(1009.0)));
    assert_eq!(second[0][16], Value::Count(1));
}

#[test]
fn established_connection_closes_five_seconds_after_the_fin_exchange() {
    let cfg = TrackerConfig {
        ignore_checksums: true,
        ..TrackerConfig::default()
    };
    let mut e = Engine::with_uids(cfg, Arc::new(Dispatcher::none()), UidGen::seeded(1));
    let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let pkts = [
        (0.0, tcp_frame(c, 40000, s, 9, 0x02, 100, 0, b"")),
        (0.1, tcp_frame(s, 9, c, 40000, 0x12, 500, 101, b"")),
        (0.2, tcp_frame(c, 40000, s, 9, 0x10, 101, 501, b"")),
        (0.3, tcp_frame(c, 40000, s, 9, 0x18, 101, 501, b"hello")),
        (0.4, tcp_frame(s, 9, c, 40000, 0x11, 501, 106, b"")),
        (0.5, tcp_frame(c, 40000, s, 9, 0x11, 106, 502, b"")),
        (0.6, tcp_frame(s, 9, c, 40000, 0x10, 502, 107, b"")),
    ];
    for (t, f) in &pkts {
        e.packet(2000.0 + t, Linktype::ETHERNET, f, f.len());
    }
    assert!(
        conn_rows(&mut e).is_empty(),
        "removed only after tcp_close_delay"
    );
    let later = tcp_frame([10, 9, 9, 9], 1, [10, 9, 9, 8], 2, 0x02, 1, 0, b"");
    e.packet(2005.6, Linktype::ETHERNET, &later, later.len());
    let rows = conn_rows(&mut e);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][11], Value::Str("SF".into()));
    assert_eq!(rows[0][15], Value::Str("ShADfFa".into()));
    // The final ACK after both FINs does not extend the duration.
    assert_eq!(rows[0][8], Value::Interval(2000.5 - 2000.0));
    assert_eq!(
        (rows[0][9].clone(), rows[0][10].clone()),
        (Value::Count(5), Value::Count(0))
    );
}

#[test]
fn vxlan_inner_connections_name_the_outer_one_as_tunnel_parent() {
    let mut e = engine(100);
    let inner = udp_frame([192, 168, 1, 1], 5000, [192, 168, 1, 2], 6000, b"inner");
    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
    vx.extend_from_slice(&inner);
    let outer = udp_frame([10, 0, 0, 1], 40000, [10, 0, 0, 2], VXLAN_PORT, &vx);
    e.packet(1.0, Linktype::ETHERNET, &outer, outer.len());
    e.finish();
    let rows = conn_rows(&mut e);
    assert_eq!(rows.len(), 2);
    assert_tunnelled(row(&rows, 5, Value::Port(VXLAN_PORT)), &rows, "vxlan");
}

/// Zeek's `gre_ports` (base/packet-protocols/gre/main.zeek): GRE under UDP 4754 is a GRE
/// tunnel between the outer addresses; the UDP connection keeps no service.
#[test]
fn gre_over_udp_is_a_gre_tunnel_between_the_outer_hosts() {
    let mut e = engine(100);
    let inner = udp_frame([192, 168, 1, 1], 5000, [192, 168, 1, 2], 6000, b"inner");
    let mut gre = vec![0, 0, 0x08, 0x00];
    gre.extend_from_slice(&inner[14..]);
    let outer = udp_frame([10, 0, 0, 1], 40000, [10, 0, 0, 2], GRE_UDP_PORT, &gre);
    e.packet(1.0, Linktype::ETHERNET, &outer, outer.len());
    e.finish();
    let rows = conn_rows(&mut e);
    assert_eq!(rows.len(), 2);
    let udp = row(&rows, 5, Value::Port(GRE_UDP_PORT));
    assert_eq!(udp[7], Value::Unset);
    let inner = row(&rows, 5, Value::Port(6000));
    assert!(matches!(&inner[20], Value::List(p) if p.len() == 1 && p[0] != udp[1]));
}

/// `UDPAnalyzer::DeliverPacket` forwards to a UDP tunnel by the responder's port, which
/// `likely_server_ports` (GRE's port among them, by `PacketAnalyzer::register_for_ports`)
/// makes the tunnel's even when its side sends first.
#[test]
fn udp_tunnels_follow_the_responder_port() {
    let mut e = engine(100);
    let inner = udp_frame([192, 168, 1, 1], 5000, [192, 168, 1, 2], 6000, b"inner");
    let mut gre = vec![0, 0, 0x08, 0x00];
    gre.extend_from_slice(&inner[14..]);
    let from_server = udp_frame([10, 0, 0, 2], GRE_UDP_PORT, [10, 0, 0, 1], 40000, &gre);
    e.packet(1.0, Linktype::ETHERNET, &from_server, from_server.len());
    e.finish();
    let rows = conn_rows(&mut e);
    assert_eq!(rows.len(), 2, "flipped to the GRE port, then decoded");
    assert_eq!(
        row(&rows, 3, Value::Port(40000))[15],
        Value::Str("^d".into())
    );

    // Both ports likely server ports: the destination stays the responder, and it is not GRE's.
    let mut e = engine(100);
    let to_syslog = udp_frame([10, 0, 0, 2], GRE_UDP_PORT, [10, 0, 0, 1], 514, &gre);
    e.packet(1.0, Linktype::ETHERNET, &to_syslog, to_syslog.len());
    e.finish();
    assert_eq!(
        conn_rows(&mut e).len(),
        1,
        "not decoded by the originator's port"
    );
}

/// `GREAnalyzer::AnalyzePacket`: Aruba's protocol types carry 802.11 frames, decoded as a
/// GRE tunnel's inner link layer (LLC/SNAP, then IP).
#[test]
fn gre_aruba_carries_an_802_11_frame() {
    let mut e = engine(100);
    let inner = udp_frame([192, 168, 1, 1], 5000, [192, 168, 1, 2], 6000, b"inner");
    let mut wlan = vec![0x08, 0x01];
    wlan.extend_from_slice(&[0; 22]);
    wlan.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
    wlan.extend_from_slice(&inner[14..]);
    let outer = gre_frame(0x8240, &wlan);
    e.packet(1.0, Linktype::ETHERNET, &outer, outer.len());
    e.finish();
    let rows = conn_rows(&mut e);
    let inner = row(&rows, 5, Value::Port(6000));
    assert!(matches!(&inner[20], Value::List(p) if p.len() == 1));
}

/// `IEEE802_11Analyzer::AnalyzePacket`: a QoS data frame with the A-MSDU bit carries several
/// packets, each analysed.
#[test]
fn an_802_11_amsdu_carries_each_subframe() {
    let mut e = engine(100);
    let mut wlan = vec![0x88, 0x01];
    wlan.extend_from_slice(&[0; 22]);
    wlan.extend_from_slice(&[0x80, 0]);
    for port in [6000u16, 6001] {
        let inner = udp_frame([192, 168, 1, 1], 5000, [192, 168, 1, 2], port, b"in");
        let packet = &inner[14..];
        wlan.extend_from_slice(&[0; 12]);
        wlan.extend_from_slice(&((8 + packet.len()) as u16).to_be_bytes());
        wlan.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        wlan.extend_from_slice(packet);
        wlan.extend(std::iter::repeat_n(0, (8 + packet.len()) % 4));
    }
    let outer = gre_frame(0x8240, &wlan);
    e.packet(1.0, Linktype::ETHERNET, &outer, outer.len());
    e.finish();
    let rows = conn_rows(&mut e);
    assert_eq!(rows.len(), 2);
    row(&rows, 5, Value::Port(6001));
}

/// An Ethernet/IPv4/GRE frame with this protocol type.
fn gre_frame(proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut gre = vec![0, 0];
    gre.extend_from_slice(&proto.to_be_bytes());
    gre.extend_from_slice(payload);
    let mut outer = udp_frame([10, 0, 0, 1], 0, [10, 0, 0, 2], 0, &[]);
    outer.truncate(14 + 20);
    outer[14 + 9] = ipproto::GRE;
    outer[16..18].copy_from_slice(&((20 + gre.len()) as u16).to_be_bytes());
    outer[24..26].copy_from_slice(&[0, 0]);
    let c = !decode::checksum(&outer[14..34], 0);
    outer[24..26].copy_from_slice(&c.to_be_bytes());
    outer.extend_from_slice(&gre);
    outer
}

/// Zeek's `DNS_Interpreter::ParseMessage` flips a connection whose first message is a
/// reply from the originator: with both ports 53 only the message tells the roles.
#[test]
fn dns_reply_seen_first_between_port_53s_makes_its_receiver_the_originator() {
    let mut e = engine(100);
    let reply = b"\x12\x34\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x00\x00\x01\x00\x01";
    let f = udp_frame([10, 0, 0, 1], 53, [10, 0, 0, 2], 53, reply);
    e.packet(1.0, Linktype::ETHERNET, &f, f.len());
    e.finish();
    let rows = conn_rows(&mut e);
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r[2], Value::Addr([10, 0, 0, 2].into()), "originator");
    assert_eq!(r[4], Value::Addr([10, 0, 0, 1].into()), "responder");
    // The counts stay with the role: the reply counts as the originator's.
    assert_eq!(r[11], Value::Str("S0".into()));
    assert_eq!(r[15], Value::Str("D^".into()));
    assert_eq!((&r[16], &r[18]), (&Value::Count(1), &Value::Count(0)));
}

/// Zeek's NTP analyzer (`proc_ntp_message`) flips once on a server message from the
/// originator; the client's later request then counts as the originator's too.
#[test]
fn ntp_server_message_first_flips_the_connection_once() {
    let mut e = engine(100);
    let mut msg = [0u8; 48];
    msg[0] = 0x24; // v4 server
    let reply = udp_frame([10, 0, 0, 1], 123, [10, 0, 0, 2], 123, &msg);
    msg[0] = 0x23; // v4 client
    let request = udp_frame([10, 0, 0, 2], 123, [10, 0, 0, 1], 123, &msg);
    e.packet(1.0, Linktype::ETHERNET, &reply, reply.len());
    e.packet(2.0, Linktype::ETHERNET, &request, request.len());
    e.finish();
    let rows = conn_rows(&mut e);
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r[2], Value::Addr([10, 0, 0, 2].into()), "originator");
    assert_eq!(
        (&r[11], &r[15]),
        (&Value::Str("S0".into()), &Value::Str("D^".into()))
    );
    assert_eq!((&r[9], &r[16]), (&Value::Count(96), &Value::Count(2)));
}

/// Zeek's DHCP scripts add only 67/udp to `likely_server_ports`: a server's reply to a
/// client's port 68 starts a connection the client originates.
#[test]
fn dhcp_reply_is_flipped_to_the_client() {
    let mut e = engine(100);
    let f = udp_frame([10, 0, 0, 1], 67, [10, 0, 0, 9], 68, &[2; 240]);
    e.packet(1.0, Linktype::ETHERNET, &f, f.len());
    e.finish();
    let rows = conn_rows(&mut e);
    let r = &rows[0];
    assert_eq!(
        (&r[2], &r[3]),
        (&Value::Addr([10, 0, 0, 9].into()), &Value::Port(68))
    );
    assert_eq!(
        (&r[11], &r[15]),
        (&Value::Str("SHR".into()), &Value::Str("^d".into()))
    );
}

/// Zeek's `DNS_Analyzer::ExpireTimer`: a DNS connection over UDP idle for
/// `dns_session_timeout` (10 s, less a second) when its timer fires is removed, so a later
/// query on the same ports is a new connection.
#[test]
fn dns_over_udp_ends_after_its_session_timeout() {
    let mut e = engine(100);
    let query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x00\x00\x01\x00\x01";
    let f = udp_frame([10, 0, 0, 1], 40000, [10, 0, 0, 2], 53, query);
    // Timers at +10 (idle 8 s: kept) and +20 (idle 18 s: removed); the query at +25 is new.
    for t in [0.0, 2.0, 25.0] {
        e.packet(100.0 + t, Linktype::ETHERNET, &f, f.len());
    }
    let first = conn_rows(&mut e);
    assert_eq!(first.len(), 1);
    assert_eq!(
        (&first[0][8], &first[0][16]),
        (&Value::Interval(2.0), &Value::Count(2))
    );
    e.finish();
    assert_eq!(conn_rows(&mut e)[0][0], Value::Time(Timestamp(125.0)));
}

#[test]
fn gtp_user_plane_is_decapsulated_and_other_messages_are_not() {
    let mut e = engine(100);
    let inner = udp_frame([172, 16, 0, 1], 5000, [172, 16, 0, 2], 6000, b"inner");
    let inner_ip = &inner[14..];
    let mut gtp = vec![0x30, 0xff];
    gtp.extend_from_slice(&(inner_ip.len() as u16).to_be_bytes());
    gtp.extend_from_slice(&[0, 0, 0, 1]);
    gtp.extend_from_slice(inner_ip);
    let outer = udp_frame([10, 0, 0, 1], GTP_U_PORT, [10, 0, 0, 2], GTP_U_PORT, &gtp);
    e.packet(1.0, Linktype::ETHERNET, &outer, outer.len());
    let echo = udp_frame(
        [10, 0, 0, 3],
        GTP_U_PORT,
        [10, 0, 0, 4],
        GTP_U_PORT,
        &[0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0],
    );
    e.packet(2.0, Linktype::ETHERNET, &echo, echo.len());
    e.finish();
    let rows = conn_rows(&mut e);
    assert_eq!(rows.len(), 3);
    let outer = row(&rows, 2, Value::Addr([10, 0, 0, 1].into()));
    assert_tunnelled(outer, &rows, "gtpv1");
    let echo = row(&rows, 2, Value::Addr([10, 0, 0, 3].into()));
    assert_eq!(echo[7], Value::Unset);
}

#[test]
fn reassembly_memory_is_bounded_across_connections() {
    let cfg = TrackerConfig {
        ignore_checksums: true,
        max_reassembly_bytes: 1000,
        ..TrackerConfig::default()
    };
    let mut e = Engine::with_uids(cfg, Arc::new(Dispatcher::all()), UidGen::seeded(1));
    let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    for port in 0..4u16 {
        let p = 40000 + port;
        let hs = [
            tcp_frame(c, p, s, 80, 0x02, 100, 0, b""),
            tcp_frame(s, 80, c, p, 0x12, 500, 101, b""),
            tcp_frame(c, p, s, 80, 0x10, 101, 501, b""),
            // 400 bytes above a hole: buffered until the hole fills or an ACK passes it.
            tcp_frame(c, p, s, 80, 0x18, 201, 501, &[b'x'; 400]),
        ];
        for f in &hs {
            e.packet(1.0 + f64::from(port), Linktype::ETHERNET, f, f.len());
        }
    }
    let weirds: Vec<String> = e
        .take_records()
        .iter()
        .filter(|r| r.record().path() == "weird")
        .map(|r| format!("{:?}", r.record().values()[6]))
        .collect();
    assert_eq!(
        weirds
            .iter()
            .filter(|w| w.contains("reassembly_memory_exhausted"))
            .count(),
        2,
        "{weirds:?}"
    );
}

#[test]
fn teredo_carries_ipv6_connections() {
    // The inner UDP checksum is not filled in.
    let cfg = TrackerConfig {
        ignore_checksums: true,
        ..TrackerConfig::default()
    };
    let mut e = Engine::with_uids(cfg, Arc::new(Dispatcher::all()), UidGen::seeded(3));
    // An IPv6/UDP packet with an 8-byte payload.
    let mut v6 = vec![0x60, 0, 0, 0, 0, 16, 17, 64];
    v6.extend_from_slice(&[0x20, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    v6.extend_from_slice(&[0x13, 0x88, 0x17, 0x70, 0, 16, 0, 0]);
    v6.extend_from_slice(b"payload!");
    let outer = udp_frame([10, 0, 0, 1], 40000, [10, 0, 0, 2], TEREDO_PORT, &v6);
    e.packet(1.0, Linktype::ETHERNET, &outer, outer.len());
    e.finish();
    let rows = conn_rows(&mut e);
    assert_eq!(rows.len(), 2);
    assert_tunnelled(row(&rows, 5, Value::Port(TEREDO_PORT)), &rows, "teredo");
}

#[test]
fn flow_table_is_bounded_and_evicts_oldest() {
    let mut e = engine(50);
    let flow = |e: &mut Engine, ts: f64, sport: u16| {
        let f = udp_frame([10, 0, 0, 1], sport, [10, 0, 0, 2], 9999, b"x");
        e.packet(ts, Linktype::ETHERNET, &f, f.len());
        assert!(e.tracker().len() <= 50);
    };
    // 50 flows fill the table; the first 25 are active again later than the other 25.
    for i in 0..50u16 {
        flow(&mut e, 1.0 + f64::from(i) * 0.001, 1000 + i);
    }
    for i in 0..25u16 {
        flow(&mut e, 2.0 + f64::from(i) * 0.001, 1000 + i);
    }
    assert!(
        e.take_records().is_empty(),
        "nothing evicted below the limit"
    );
    // 50 new flows: each evicts the flow idle longest (1% of 50 rounds up to one).
    for i in 0..50u16 {
        flow(&mut e, 3.0 + f64::from(i) * 0.001, 2000 + i);
    }
    let records = e.take_records();
    let evicted: Vec<u16> = records
        .iter()
        .filter_map(|r| match r {
            Output::Conn(c) => Some(c.orig_p),
            _ => None,
        })
        .collect();
    let expected: Vec<u16> = (1025..1050).chain(1000..1025).collect();
    assert_eq!(evicted, expected, "the idlest flows go first, in order");
    let weirds = records
        .iter()
        .filter(|r| r.record().path() == "weird")
        .count();
    assert_eq!(weirds, 50, "each eviction is reported");
    assert_eq!(e.tracker().stats.conns_evicted, 50);
    e.finish();
    let mut rest: Vec<u16> = e
        .take_records()
        .iter()
        .filter_map(|r| match r {
            Output::Conn(c) => Some(c.orig_p),
            _ => None,
        })
        .collect();
    rest.sort_unstable();
    assert_eq!(rest, (2000..2050).collect::<Vec<_>>(), "the newest stay");
}

fn checksums_ignored() -> Engine {
    let cfg = TrackerConfig {
        ignore_checksums: true,
        ..TrackerConfig::default()
    };
    Engine::with_uids(cfg, Arc::new(Dispatcher::none()), UidGen::seeded(3))
}

/// Zeek pull request 2191: a connection that begins with a SYN-ACK is flipped once an ACK or
/// data follows, so the SYN-ACK's receiver becomes the originator.
#[test]
fn a_syn_ack_followed_by_an_ack_flips_the_connection() {
    let mut e = checksums_ignored();
    let (client, server) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let syn_ack = tcp_frame(server, 5555, client, 40000, 0x12, 700, 101, b"");
    let ack = tcp_frame(client, 40000, server, 5555, 0x10, 101, 701, b"");
    e.packet(1000.0, Linktype::ETHERNET, &syn_ack, syn_ack.len());
    e.packet(1000.1, Linktype::ETHERNET, &ack, ack.len());
    e.finish();
    let rows = conn_rows(&mut e);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0][2],
        Value::Addr(std::net::Ipv4Addr::from(client).into())
    );
    assert_eq!(rows[0][3], Value::Port(40000));
    assert_eq!(rows[0][15], Value::Str("^hA".into()));
    assert_eq!(
        (&rows[0][16], &rows[0][18]),
        (&Value::Count(1), &Value::Count(1))
    );
}

/// A stealth scan's SYN-ACK elicits a RST, never an ACK: the roles stay as seen.
#[test]
fn a_syn_ack_answered_by_a_rst_is_not_flipped() {
    let mut e = checksums_ignored();
    let (scanner, target) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let syn_ack = tcp_frame(scanner, 5555, target, 40000, 0x12, 700, 101, b"");
    let rst = tcp_frame(target, 40000, scanner, 5555, 0x04, 101, 0, b"");
    e.packet(1000.0, Linktype::ETHERNET, &syn_ack, syn_ack.len());
    e.packet(1000.1, Linktype::ETHERNET, &rst, rst.len());
    e.finish();
    let rows = conn_rows(&mut e);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0][2],
        Value::Addr(std::net::Ipv4Addr::from(scanner).into())
    );
    assert_eq!(rows[0][15], Value::Str("Hr".into()));
}

/// A window scale shift above 14 is clamped with the weird `TCP_scale_range` naming it.
#[test]
fn a_window_scale_above_fourteen_is_a_weird() {
    let mut e = checksums_ignored();
    let mut syn = tcp_frame([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80, 0x02, 100, 0, b"");
    // Data offset 6: one option word, window scale 255.
    syn[14 + 20 + 12] = 0x60;
    syn.extend_from_slice(&[3, 3, 255, 1]);
    let total = (syn.len() - 14) as u16;
    syn[16..18].copy_from_slice(&total.to_be_bytes());
    e.packet(1000.0, Linktype::ETHERNET, &syn, syn.len());
    e.finish();
    let weirds: Vec<Vec<Value>> = e
        .take_records()
        .into_iter()
        .filter(|r| r.record().path() == "weird")
        .map(|r| r.record().values())
        .collect();
    assert_eq!(weirds.len(), 1, "{weirds:?}");
    assert!(weirds[0].contains(&Value::Str("TCP_scale_range".into())));
    assert!(weirds[0].contains(&Value::Str("255".into())));
}

/// Zeek's `UDPAnalyzer::DeliverPacket` (udp/UDP.cc): a UDP length other than the IP payload's
/// is `UDP_datagram_length_mismatch` with both lengths in `addl`.
#[test]
fn a_udp_length_other_than_the_ip_payload_is_a_weird_naming_both() {
    let mut e = checksums_ignored();
    let mut f = udp_frame([10, 0, 0, 1], 4000, [10, 0, 0, 2], 5000, b"abcd");
    f[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&10u16.to_be_bytes());
    e.packet(1000.0, Linktype::ETHERNET, &f, f.len());
    e.finish();
    let weirds: Vec<Vec<Value>> = e
        .take_records()
        .into_iter()
        .filter(|r| r.record().path() == "weird")
        .map(|r| r.record().values())
        .collect();
    assert_eq!(weirds.len(), 1, "{weirds:?}");
    assert!(weirds[0].contains(&Value::Str("UDP_datagram_length_mismatch".into())));
    assert!(weirds[0].contains(&Value::Str("10 != 12".into())));
}

/// All analyzers, checksums ignored.
fn analyzing() -> Engine {
    let cfg = TrackerConfig {
        ignore_checksums: true,
        ..TrackerConfig::default()
    };
    Engine::with_uids(cfg, Arc::new(Dispatcher::all()), UidGen::seeded(5))
}

fn ssl_rows(e: &mut Engine) -> usize {
    e.take_records()
        .into_iter()
        .filter(|r| r.record().path() == "ssl")
        .count()
}

/// `SSL_Analyzer::DeliverStream` returns on `TCP()->IsPartial()`: TLS of a connection picked
/// up without its SYN handshake is not analyzed, so it has no ssl.log row.
#[test]
fn tls_of_a_partial_connection_is_not_analyzed() {
    let (client, server) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    // A handshake alert record: enough for a row when analyzed.
    let alert = [21, 3, 3, 0, 2, 2, 40];
    let mut e = analyzing();
    let data = tcp_frame(server, 443, client, 40000, 0x18, 700, 101, &alert);
    let ack = tcp_frame(client, 40000, server, 443, 0x10, 101, 700, b"");
    e.packet(1000.0, Linktype::ETHERNET, &ack, ack.len());
    e.packet(1000.1, Linktype::ETHERNET, &data, data.len());
    e.finish();
    assert_eq!(ssl_rows(&mut e), 0);

    let mut e = analyzing();
    let syn = tcp_frame(client, 40000, server, 443, 0x02, 100, 0, b"");
    let syn_ack = tcp_frame(server, 443, client, 40000, 0x12, 699, 101, b"");
    e.packet(1000.0, Linktype::ETHERNET, &syn, syn.len());
    e.packet(1000.0, Linktype::ETHERNET, &syn_ack, syn_ack.len());
    e.packet(1000.0, Linktype::ETHERNET, &ack, ack.len());
    e.packet(1000.1, Linktype::ETHERNET, &data, data.len());
    e.finish();
    assert_eq!(ssl_rows(&mut e), 1);
}
