#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Criterion benches of the pipeline stages on COPY-like text: reading
//! COPY rows from the wire bytes into the framer (pgkeep's reader, slices
//! of the read buffer, against a `Bytes` per row as the driver makes them),
//! framing,
//! frame encoding (zstd with its content checksum, then SHA-256 of the
//! stored bytes) at several levels, with each cipher, decoding (verify +
//! open + decompress, and with format 1's plaintext hash), the ciphers alone, and
//! the passphrase key derivation. Run: `cargo bench --bench pipeline`.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pgkeep::crypto::{BackupKey, CipherKind, DataCipher, DataKey, KdfParams, SecretInput};
use pgkeep::pg::wire::message;
use pgkeep::pipeline::codec::{decode_frame, encode_frame, ExpectedFrame};
use pgkeep::pipeline::{FrameBuffers, Framer, PlainFrame};
use postgres_protocol::message::backend::Message;

/// ~4 MiB of rows shaped like a typical table's COPY text: ids, names,
/// timestamps, amounts, JSON, and a 32-hex-digit token (high entropy, like
/// hashes or UUIDs), so compression speed is not flattered.
fn sample_rows() -> Vec<Vec<u8>> {
    let mut rows = Vec::new();
    let mut total = 0;
    let mut i = 0u64;
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    while total < 4 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let token = format!("{x:016x}{:016x}", x.rotate_left(29) ^ i);
        let row = format!(
            "{i}\t{token}\tcustomer-{}\t{}@example.com\t2026-11-{:02} 10:{:02}:00+00\t{}.{:02}\t{{\"plan\": \"pro\", \"seats\": {}}}\n",
            i * 7919 % 100_000,
            i * 31 % 5000,
            i % 28 + 1,
            i % 60,
            i * 13 % 10_000,
            i % 100,
            i % 50
        );
        total += row.len();
        rows.push(row.into_bytes());
        i += 1;
    }
    rows
}

fn bench(c: &mut Criterion) {
    let rows = sample_rows();
    let bytes: usize = rows.iter().map(Vec::len).sum();

    let mut g = c.benchmark_group("framer");
    g.throughput(Throughput::Bytes(bytes as u64));
    // Pooled buffers, as a backup uses them: after the first iteration every
    // frame reuses a buffer.
    let bufs = FrameBuffers::new(4 << 20, 64 << 20);
    g.bench_function("push_row_4MiB_frames", |b| {
        b.iter(|| {
            let mut f = Framer::new(4 << 20, bufs.plain.clone());
            let mut out = Vec::new();
            for r in &rows {
                f.push_row(r, &mut out);
            }
            out.push(f.finish());
            out.len()
        })
    });
    g.finish();

    // The same rows as the server sends them: one CopyData message each.
    let wire: Vec<u8> = rows
        .iter()
        .flat_map(|r| {
            let mut m = vec![message::COPY_DATA];
            m.extend_from_slice(&(r.len() as u32 + 4).to_be_bytes());
            m.extend_from_slice(r);
            m
        })
        .collect();
    let mut g = c.benchmark_group("copy_reader");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("wire_slices", |b| {
        b.iter(|| {
            let mut f = Framer::new(4 << 20, bufs.plain.clone());
            let mut out = Vec::new();
            let mut at = 0;
            while let Some(s) = message::next_span(&wire[at..]).unwrap() {
                f.push_row(&wire[at..][s.body()], &mut out);
                at += s.total;
            }
            out.push(f.finish());
            out.len()
        })
    });
    g.bench_function("bytes_per_row", |b| {
        b.iter(|| {
            let mut f = Framer::new(4 << 20, bufs.plain.clone());
            let mut out = Vec::new();
            let mut buf = bytes::BytesMut::from(&wire[..]);
            while let Some(m) = Message::parse(&mut buf).unwrap() {
                let Message::CopyData(body) = m else {
                    panic!("not a row")
                };
                let row: Bytes = body.into_bytes();
                f.push_row(&row, &mut out);
            }
            out.push(f.finish());
            out.len()
        })
    });
    g.finish();

    let plain: Vec<u8> = rows.concat();
    let frame = PlainFrame {
        data: Bytes::from(plain),
        rows: rows.len() as u32,
        row_boundary: true,
        last: true,
    };
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(20);
    for level in [0, 1, 3, 6] {
        g.bench_with_input(BenchmarkId::new("zstd", level), &level, |b, &level| {
            b.iter(|| encode_frame(&frame, 0, 0, level, None, &bufs).expect("encode"))
        });
    }
    for kind in [CipherKind::Aes256Gcm, CipherKind::ChaCha20Poly1305] {
        let key = BackupKey::new(kind, &DataKey::generate(), "bench");
        g.bench_function(BenchmarkId::new("zstd1_sealed", kind.name()), |b| {
            b.iter(|| encode_frame(&frame, 0, 0, 1, Some(&key), &bufs).expect("encode"))
        });
    }
    g.finish();

    // The cipher stage alone, on a frame-sized buffer.
    let mut g = c.benchmark_group("cipher");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(20);
    for kind in [CipherKind::Aes256Gcm, CipherKind::ChaCha20Poly1305] {
        let cipher = DataCipher::new(kind, &DataKey::generate());
        let mut buf = frame.data.to_vec();
        g.bench_function(BenchmarkId::new("seal", kind.name()), |b| {
            b.iter(|| {
                buf.truncate(bytes);
                cipher
                    .seal_in_place(&[0; 12], b"aad", &mut buf)
                    .expect("seal")
            })
        });
    }
    g.finish();

    // Passphrase → master key with the default profile (64 MiB, t=3).
    let mut g = c.benchmark_group("kdf");
    g.sample_size(10);
    let params = KdfParams::new_random();
    let pass = SecretInput::Passphrase(zeroize::Zeroizing::new("correct horse battery".into()));
    g.bench_function("argon2id_default_profile", |b| {
        b.iter(|| pass.derive(Some(&params)).expect("derive"))
    });
    g.finish();

    let enc = encode_frame(&frame, 0, 0, 3, None, &bufs).expect("encode");
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(20);
    for (name, plain_digest) in [
        ("verify_decompress_zstd3", false),
        ("verify_decompress_zstd3_format1_digest", true),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                decode_frame(
                    &enc.bytes,
                    &ExpectedFrame {
                        object: "bench",
                        stream: 0,
                        index: 0,
                        sha256: &enc.header.sha256,
                        version: enc.header.version,
                        key: None,
                        plain_digest,
                    },
                    &bufs,
                )
                .expect("decode")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
