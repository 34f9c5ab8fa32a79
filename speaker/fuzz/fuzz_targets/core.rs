//! The daemon's core under fuzzed sequences of events (peers, UPDATEs, kernel
//! routes, links and addresses, reloads, drains, time), with the invariants of
//! `speaker::replay` and `speaker::fuzz` checked after every event. With
//! `SPEAKER_FUZZ_CASE=DIR`, a failing input is written out as a replay case
//! (`DIR/config.yaml`, `DIR/events.jsonl`) to keep under `tests/replay/`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(f) = speaker::fuzz::run(data) {
        if let Some(dir) = std::env::var_os("SPEAKER_FUZZ_CASE") {
            let dir = std::path::PathBuf::from(dir);
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join("config.yaml"), &f.config_yaml);
            let _ = std::fs::write(dir.join("events.jsonl"), f.events_jsonl());
        }
        panic!("{}", f.message);
    }
});
