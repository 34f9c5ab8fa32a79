//! A peer's port, as Calico writes it in `peerIP` (`127.0.0.1:1790`), is where the
//! speaker connects. The daemon runs in a network namespace of its own (a thread of
//! this test leaves the host's with unshare(2), and what it starts inherits it), beside
//! a listener on that port, which must receive the speaker's OPEN. Needs root, as the
//! interop tests do; the namespace goes with the processes in it.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_speaker_connects_to_the_port_its_peer_ip_gives() {
    let dir = std::env::temp_dir().join(format!("speaker-peer-port-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("speaker.yaml");
    std::fs::write(
        &config,
        format!(
            "asNumber: 64512\nrouterID: 10.0.0.1\nlistenPort: 1179\napiSocket: {}\npeers:\n  - peerIP: 127.0.0.1:1790\n    asNumber: 65000\n",
            dir.join("speaker.sock").display()
        ),
    )
    .unwrap();
    let open = std::thread::spawn(move || -> Result<Vec<u8>, String> {
        // SAFETY: unshare(2) with CLONE_NEWNET moves this thread alone into a new
        // network namespace; no memory is involved.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(format!("unshare: {}", std::io::Error::last_os_error()));
        }
        let lo = Command::new("ip").args(["link", "set", "lo", "up"]).status();
        if !lo.is_ok_and(|s| s.success()) {
            return Err("ip link set lo up failed".into());
        }
        let listener = TcpListener::bind("127.0.0.1:1790").map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let mut speaker = Command::new(env!("CARGO_BIN_EXE_speaker"))
            .args(["run", "-c"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        let got = loop {
            match listener.accept() {
                Ok((mut c, _)) => {
                    c.set_read_timeout(Some(Duration::from_secs(5)))
                        .map_err(|e| e.to_string())?;
                    let mut head = [0u8; 19];
                    break c
                        .read_exact(&mut head)
                        .map(|_| head.to_vec())
                        .map_err(|e| e.to_string());
                }
                Err(_) if start.elapsed() < Duration::from_secs(15) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => break Err(format!("no connection on 127.0.0.1:1790 within 15 s: {e}")),
            }
        };
        // Stopped by its PID.
        let _ = speaker.kill();
        let _ = speaker.wait();
        got
    });
    let head = open.join().unwrap();
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("speaker-peer-port-{}", std::process::id())));
    let head = head.unwrap();
    assert_eq!(&head[..16], &[0xff; 16], "a BGP marker");
    assert_eq!(head[18], 1, "an OPEN: {head:02x?}");
}
