//! Bytes from a PostgreSQL server as pgkeep's own COPY connection reads
//! them: message spans, every message parsed, error fields read. No panic,
//! no span past the input, and the messages found are the same however
//! the bytes are cut.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgkeep::pg::wire::message::{self, ServerError};
use postgres_protocol::message::backend::Message;

/// The spans of `data` read in the pieces `cuts`, as a connection does.
fn spans(pieces: &[&[u8]]) -> Vec<(u8, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        while let Ok(Some(s)) = message::next_span(&buf) {
            assert!(s.total >= 5 && s.total <= buf.len());
            out.push((s.tag, buf[s.body()].to_vec()));
            if s.tag != message::COPY_DATA {
                if let Ok(Message::ErrorResponse(b)) = message::parse(BytesMut::from(&buf[..s.total]))
                {
                    let _ = ServerError::from_fields(b.fields()).map(|e| e.to_string());
                }
            }
            buf.drain(..s.total);
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).min(data.len());
    assert_eq!(spans(&[data]), spans(&[&data[..cut], &data[cut..]]));
    if let Ok(tag) = std::str::from_utf8(data) {
        let _ = message::copy_rows(tag);
    }
});
