//! Feeds arbitrary bytes to `Message::decode` the way a session frames a TCP
//! stream. It must never panic, and with 4-byte AS numbers whatever it reads must
//! encode and read back the same (bar the RFC 7606 error list, which describes the
//! bytes received, not the message).

#![no_main]

use libfuzzer_sys::fuzz_target;
use speaker::packet::{Message, SessionCaps};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, data)) = data.split_first() else {
        return;
    };
    let caps = SessionCaps {
        four_octet_as: flags & 1 != 0,
    };
    // Bit 1 supplies the marker, so the fuzzer spends its time on the bodies.
    let mut stream = Vec::with_capacity(data.len() + 16);
    if flags & 2 != 0 {
        stream.extend_from_slice(&[0xff; 16]);
    }
    stream.extend_from_slice(data);

    let mut rest = stream.as_slice();
    while let Ok((msg, used)) = Message::decode(rest, &caps) {
        assert!((19..=rest.len()).contains(&used));
        if caps.four_octet_as {
            let bytes = msg.to_bytes(&caps).expect("a decoded message re-encodes");
            let (again, again_used) = Message::decode(&bytes, &caps).expect("and decodes");
            assert_eq!(again_used, bytes.len());
            assert_eq!(without_errors(again), without_errors(msg));
        }
        rest = &rest[used..];
    }
});

fn without_errors(msg: Message) -> Message {
    match msg {
        Message::Update(mut update) => {
            update.errors.clear();
            Message::Update(update)
        }
        other => other,
    }
}
