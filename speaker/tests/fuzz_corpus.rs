//! The fuzz targets' kept corpus (`fuzz/corpus/<target>/`), run through the same
//! checks as the fuzzers run them (`speaker::fuzz`), so `cargo test` keeps what
//! `make fuzz` found; then a few thousand pseudo-random programs of the core, so
//! its invariants are exercised on every test run, not only when someone fuzzes.

use std::path::Path;

use speaker::fuzz;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("a corpus entry").path();
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.display().to_string(), data)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn decode_corpus_holds() {
    let files = corpus("decode");
    assert!(
        files.len() > 100,
        "the decode corpus is nearly empty: {} files",
        files.len()
    );
    for (name, data) in files {
        if let Err(e) = fuzz::decode(&data) {
            panic!("{name}: {e}");
        }
    }
}

#[test]
fn core_corpus_holds() {
    let files = corpus("core");
    assert!(
        files.len() > 100,
        "the core corpus is nearly empty: {} files",
        files.len()
    );
    for (name, data) in files {
        if let Err(f) = fuzz::run(&data) {
            panic!("{name}: {}\n{}", f.message, f.events_jsonl());
        }
    }
}

#[test]
fn random_programs_of_the_core_hold() {
    // xorshift64*: the same programs on every run.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for n in 0..5000 {
        let len = (next() % 200) as usize;
        let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if let Err(f) = fuzz::run(&data) {
            panic!("program {n} ({data:?}): {}\n{}", f.message, f.events_jsonl());
        }
    }
}
