//! The decoder: bytes as a stream of BGP messages (OPEN capabilities, path
//! attributes, NLRI), never a panic, and a decode-encode-decode round trip that
//! keeps the message. The checks are `speaker::fuzz::decode`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = speaker::fuzz::decode(data) {
        panic!("{e}");
    }
});
