//! Bytes from a Redis server or a repository, cut at an arbitrary point:
//! RESP replies, the SYNC reply's preamble and end mark, the RDB
//! header/trailer checks, scan records and Redis URLs. No panic, no read
//! past the input, and the streaming readers agree with themselves however
//! the bytes are cut.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgkeep::redis::rdb::RdbCheck;
use pgkeep::redis::records::RecordReader;
use pgkeep::redis::transfer::{next_step, EofScanner, Step};
use pgkeep::redis::{resp, RedisTarget};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).min(data.len());
    if let Ok(Some((_, used))) = resp::parse(data) {
        assert!(used <= data.len());
    }
    if let Ok(Step::Skip(n) | Step::Payload(_, n)) = next_step(data) {
        assert!(n > 0 && n <= data.len());
    }
    // The end mark is found the same way whatever the cut.
    let mark = *b"0123456789012345678901234567890123456789";
    let mut whole = EofScanner::new(mark);
    let one = whole.push(data);
    let mut split = EofScanner::new(mark);
    let two = split.push(&data[..cut]).and_then(|mut a| {
        a.extend(split.push(&data[cut..])?);
        Ok(a)
    });
    if let (Ok(a), Ok(b)) = (&one, &two) {
        assert_eq!(a, b);
    }
    // The RDB check gives one verdict however the file is cut.
    let verdict = |cuts: &[&[u8]]| {
        let mut c = RdbCheck::new();
        for part in cuts {
            c.update(part)?;
        }
        c.finish()
    };
    let a = verdict(&[data]);
    let b = verdict(&[&data[..cut], &data[cut..]]);
    assert_eq!(a.is_ok(), b.is_ok());
    if let (Ok(a), Ok(b)) = (a, b) {
        assert_eq!(a, b);
    }
    let mut r = RecordReader::new();
    r.push(pgkeep::redis::records::MAGIC);
    r.push(data);
    while let Ok(Some(_)) = r.next_record() {}
    let _ = r.finish();
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = RedisTarget::parse(s);
    }
});
