//! RFC 6229 section 2: RC4 keystream at offsets 0 to 4096 for the keys
//! 0x0102...; the 40-, 64-, 128- and 256-bit cases.

use tsunagi_crypto::Rc4;

fn octets(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

/// Checks `(offset, 16 octets)` rows against the keystream of `key`.
fn check(key: &[u8], rows: &[(usize, &str)]) {
    let mut stream = vec![0u8; 4112];
    Rc4::new(key).unwrap().keystream(&mut stream);
    for (offset, want) in rows {
        assert_eq!(
            stream[*offset..offset + 16],
            octets(want)[..],
            "key length {}, offset {offset}",
            key.len()
        );
    }
    // The same stream through `apply` on zeros, in uneven pieces.
    let mut zeros = vec![0u8; 4112];
    let mut rc4 = Rc4::new(key).unwrap();
    for piece in zeros.chunks_mut(1021) {
        rc4.apply(piece);
    }
    assert_eq!(zeros, stream, "key length {}", key.len());
}

fn key(len: u8) -> Vec<u8> {
    (1..=len).collect()
}

#[test]
fn key_40_bits() {
    check(
        &key(5),
        &[
            (0, "b2 39 63 05 f0 3d c0 27 cc c3 52 4a 0a 11 18 a8"),
            (16, "69 82 94 4f 18 fc 82 d5 89 c4 03 a4 7a 0d 09 19"),
            (240, "28 cb 11 32 c9 6c e2 86 42 1d ca ad b8 b6 9e ae"),
            (256, "1c fc f6 2b 03 ed db 64 1d 77 df cf 7f 8d 8c 93"),
            (1520, "32 94 f7 44 d8 f9 79 05 07 e7 0f 62 e5 bb ce ea"),
            (1536, "d8 72 9d b4 18 82 25 9b ee 4f 82 53 25 f5 a1 30"),
            (4096, "ff 25 b5 89 95 99 67 07 e5 1f bd f0 8b 34 d8 75"),
        ],
    );
}

#[test]
fn key_64_bits() {
    check(
        &key(8),
        &[
            (0, "97 ab 8a 1b f0 af b9 61 32 f2 f6 72 58 da 15 a8"),
            (16, "82 63 ef db 45 c4 a1 86 84 ef 87 e6 b1 9e 5b 09"),
            (240, "96 36 eb c9 84 19 26 f4 f7 d1 f3 62 bd df 6e 18"),
            (256, "d0 a9 90 ff 2c 05 fe f5 b9 03 73 c9 ff 4b 87 0a"),
            (496, "73 23 9f 1d b7 f4 1d 80 b6 43 c0 c5 25 18 ec 63"),
            (512, "16 3b 31 99 23 a6 bd b4 52 7c 62 61 26 70 3c 0f"),
            (1520, "1f e8 98 67 13 f0 7c 3d 9a e1 c1 63 ff 8c f9 d3"),
            (1536, "83 69 e1 a9 65 61 0b e8 87 fb d0 c7 91 62 aa fb"),
            (4080, "d5 fa 5a 34 69 d2 9a aa f8 3d 23 58 9d b8 c8 5b"),
            (4096, "3f b4 6e 2c 8f 0f 06 8e dc e8 cd cd 7d fc 58 62"),
        ],
    );
}

#[test]
fn key_128_bits() {
    check(
        &key(16),
        &[
            (0, "9a c7 cc 9a 60 9d 1e f7 b2 93 28 99 cd e4 1b 97"),
            (16, "52 48 c4 95 90 14 12 6a 6e 8a 84 f1 1d 1a 9e 1c"),
            (240, "06 59 02 e4 b6 20 f6 cc 36 c8 58 9f 66 43 2f 2b"),
            (256, "d3 9d 56 6b c6 bc e3 01 07 68 15 15 49 f3 87 3f"),
            (496, "b6 d1 e6 c4 a5 e4 77 1c ad 79 53 8d f2 95 fb 11"),
            (512, "c6 8c 1d 5c 55 9a 97 41 23 df 1d bc 52 a4 3b 89"),
            (1520, "b4 01 10 c4 19 0b 56 22 a9 61 16 b0 01 7e d2 97"),
            (1536, "ff a0 b5 14 64 7e c0 4f 63 06 b8 92 ae 66 11 81"),
            (4080, "ff 38 26 5c 16 42 c1 ab e8 d3 c2 fe 5e 57 2b f8"),
            (4096, "a3 6a 4c 30 1a e8 ac 13 61 0c cb c1 22 56 ca cc"),
        ],
    );
}

#[test]
fn key_256_bits() {
    check(
        &key(32),
        &[
            (0, "ea a6 bd 25 88 0b f9 3d 3f 5d 1e 4c a2 61 1d 91"),
            (16, "cf a4 5c 9f 7e 71 4b 54 bd fa 80 02 7c b1 43 80"),
            (4096, "f3 e4 c0 a2 e0 2d 1d 01 f7 f0 a7 46 18 af 2b 48"),
        ],
    );
}

#[test]
fn lockstep_schedules_match_rfc_6229() {
    // 64-bit keys doubled to 16 octets schedule the same permutation.
    let k8 = key(8);
    let doubled: [u8; 16] = std::array::from_fn(|i| k8[i % 8]);
    let k16: [u8; 16] = key(16).try_into().unwrap();
    let mut states = Rc4::new_many(&[doubled, k16, doubled, k16]);
    let mut out = [[0u8; 32]; 4];
    Rc4::keystream_many(&mut states, &mut out, 0, 32);
    let want64 = octets(
        "97 ab 8a 1b f0 af b9 61 32 f2 f6 72 58 da 15 a8 \
         82 63 ef db 45 c4 a1 86 84 ef 87 e6 b1 9e 5b 09",
    );
    let want128 = octets(
        "9a c7 cc 9a 60 9d 1e f7 b2 93 28 99 cd e4 1b 97 \
         52 48 c4 95 90 14 12 6a 6e 8a 84 f1 1d 1a 9e 1c",
    );
    for lane in [0, 2] {
        assert_eq!(out[lane][..], want64[..]);
        assert_eq!(out[lane + 1][..], want128[..]);
    }
}
