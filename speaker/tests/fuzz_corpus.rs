//! The fuzz targets' kept corpus (`fuzz/corpus/<target>/`), run through the same
//! checks as the fuzzers run them (`speaker::fuzz`), so `cargo test` keeps what
//! `make fuzz` found; then a few thousand pseudo-random programs of the core, so
//! its invariants are exercised on every test run, not only when someone fuzzes.

use std::path::Path;

use speaker::fuzz;

/// Runs every input of `target`'s kept corpus through `check`; the first to fail
/// fails the test, named.
fn corpus_holds(target: &str, check: impl Fn(&[u8]) -> Result<(), String>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a corpus entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() > 100,
        "the {target} corpus is nearly empty: {} files",
        files.len()
    );
    for path in files {
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(e) = check(&data) {
            panic!("{}: {e}", path.display());
        }
    }
}

#[test]
fn decode_corpus_holds() {
    corpus_holds("decode", fuzz::decode);
}

#[test]
fn core_corpus_holds() {
    corpus_holds("core", |data| {
        fuzz::run(data).map_err(|f| format!("{}\n{}", f.message, f.events_jsonl()))
    });
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
