//! `estuary status` on a node of another host: read from the `/status` endpoint of its daemons.
//! The "other host" is 127.0.0.2: reachable, but not an address of this machine's interfaces,
//! which is what node.cfg's hosts are compared with (127.0.0.1 is the loopback's address).

mod common;

use std::fs;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

use common::{free_tcp_port, wait_for, Daemon};

#[test]
fn status_shows_a_node_on_another_host_from_its_status_endpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let etc = tmp.path().join("etc");
    fs::create_dir_all(&etc).unwrap();
    let base = free_tcp_port();
    fs::write(
        etc.join("cluster.cfg"),
        format!(
            "LogDir = {0}/logs\nSpoolDir = {0}/spool\nListenRELP = 127.0.0.1:{1}\nSendMail =\nMetricsAddress = 127.0.0.1:{base}\n",
            tmp.path().display(),
            free_tcp_port()
        ),
    )
    .unwrap();
    // The worker's capture arrives through a pipe that stays open: its sensor keeps serving.
    let fifo = tmp.path().join("capture.pcap");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let node_cfg = etc.join("node.cfg");
    fs::write(
        &node_cfg,
        format!(
            "[manager]\ntype=manager\nhost=127.0.0.1\n\n[worker-1]\ntype=worker\nhost=127.0.0.2\nread={}\n",
            fifo.display()
        ),
    )
    .unwrap();

    // What the worker's host runs, started by hand: the sensor on the port node.cfg derives for
    // it (MetricsAddress + 2 for the first worker), at its host's address.
    let pcap = common::fixtures().join("pcaps/mixed-lan-ftp-http.pcap");
    let Some(packets) = common::prereq::require_some(
        common::capinfos_packets(&pcap),
        "capinfos (Wireshark) is not installed; the remote sensor's counters are not checked",
    ) else {
        return;
    };
    let feeder = {
        let (fifo, pcap) = (fifo.clone(), pcap.clone());
        std::thread::spawn(move || {
            let mut w = fs::OpenOptions::new().write(true).open(fifo).unwrap();
            w.write_all(&fs::read(pcap).unwrap()).unwrap();
            w
        })
    };
    let sensor_port = base + 2;
    let _sensor = Daemon::estuary(
        "sensor",
        &[
            "sensor",
            "-r",
            fifo.to_str().unwrap(),
            "--logdir",
            tmp.path().join("worker-logs").to_str().unwrap(),
            "--metrics-address",
            &format!("127.0.0.2:{sensor_port}"),
        ],
        tmp.path(),
    );
    let _open_pipe = feeder.join().unwrap();

    let (code, status) = wait_for(Duration::from_secs(30), "the remote counters", || {
        let out = Command::new(common::estuary_bin())
            .args(["status", "-c"])
            .arg(&node_cfg)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains(&format!("packets received={packets} dropped=0"))
            .then_some((out.status.code(), text))
    });
    assert!(
        status.contains(&format!(
            "sensor     running (from http://127.0.0.2:{sensor_port}/status)"
        )),
        "{status}"
    );
    // Its shipper does not run: nothing answers on its port.
    assert!(
        status.contains("shipper    unknown (host unreachable: "),
        "{status}"
    );
    assert_eq!(code, Some(1), "a node not known to run: non-zero\n{status}");
}
