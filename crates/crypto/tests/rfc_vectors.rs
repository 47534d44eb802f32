//! RFC 2759 section 9.2 and RFC 3079 section 3.5 examples, every
//! intermediate value.

use tsunagi_crypto::mppe::{
    get_asymmetric_start_key, get_master_key, get_new_key_from_sha, KeyStrength, SessionKey,
    StartKeys,
};
use tsunagi_crypto::mschapv2::*;
use tsunagi_crypto::{Rc4, Secret};

fn hex<const N: usize>(s: &str) -> [u8; N] {
    let s: String = s.split_whitespace().collect();
    assert_eq!(s.len(), 2 * N, "{s}");
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

const USER: &[u8] = b"User";
fn password() -> Secret {
    Secret::from("clientPass")
}
fn auth_challenge() -> [u8; 16] {
    hex("5B 5D 7C 7D 7B 3F 2F 3E 3C 2C 60 21 32 26 26 28")
}
fn peer_challenge() -> [u8; 16] {
    hex("21 40 23 24 25 5E 26 2A 28 29 5F 2B 3A 33 7C 7E")
}
fn nt_response() -> [u8; 24] {
    hex("82 30 9E CD 8D 70 8B 5E A0 8F AA 39 81 CD 83 54 42 33 11 4A 3D 85 D6 DF")
}

#[test]
fn rfc2759_section_9_2() {
    assert_eq!(
        challenge_hash(&peer_challenge(), &auth_challenge(), USER),
        hex::<8>("D0 2E 43 86 BC E9 12 26")
    );
    let hash = nt_password_hash(&password());
    assert_eq!(
        *hash,
        hex::<16>("44 EB BA 8D 53 12 B8 D6 11 47 44 11 F5 69 89 AE")
    );
    assert_eq!(
        generate_nt_response(&auth_challenge(), &peer_challenge(), USER, &password()),
        nt_response()
    );
    assert_eq!(
        *hash_nt_password_hash(&hash),
        hex::<16>("41 C0 0C 58 4B D2 D9 1C 40 17 A2 A1 2F A5 9F 3F")
    );
    let s = generate_authenticator_response(
        &password(),
        &nt_response(),
        &peer_challenge(),
        &auth_challenge(),
        USER,
    );
    assert_eq!(s, "S=407A5589115FD0D6209F510FE9C04566932CDA56");
    assert!(check_authenticator_response(
        &password(),
        &nt_response(),
        &peer_challenge(),
        &auth_challenge(),
        USER,
        s.as_bytes()
    ));
    assert!(check_authenticator_response(
        &password(),
        &nt_response(),
        &peer_challenge(),
        &auth_challenge(),
        USER,
        s.to_lowercase().as_bytes()
    ));
    assert!(!check_authenticator_response(
        &password(),
        &nt_response(),
        &peer_challenge(),
        &auth_challenge(),
        USER,
        b"S=407A5589115FD0D6209F510FE9C04566932CDA57"
    ));
    assert!(!check_authenticator_response(
        &Secret::from("clientPasS"),
        &nt_response(),
        &peer_challenge(),
        &auth_challenge(),
        USER,
        s.as_bytes()
    ));
    assert!(check_nt_response(
        &auth_challenge(),
        &peer_challenge(),
        USER,
        &password(),
        &nt_response()
    ));
    assert!(!check_nt_response(
        &auth_challenge(),
        &peer_challenge(),
        b"user",
        &password(),
        &nt_response()
    ));
}

#[test]
fn rfc3079_section_3_5() {
    let hash = nt_password_hash(&password());
    let hash_hash = hash_nt_password_hash(&hash);
    let master = get_master_key(&hash_hash, &nt_response());
    assert_eq!(
        *master,
        hex::<16>("FD EC E3 71 7A 8C 83 8C B3 88 E5 27 AE 3C DD 31")
    );
    // The RFC's "SendStartKey" is the server's send key (Magic3)...
    let server_send = get_asymmetric_start_key(&master, 16, true, true);
    assert_eq!(
        &server_send[..],
        &hex::<16>("8B 7C DC 14 9B 99 3A 1B A1 18 CB 15 3F 56 DC CB")
    );
    // ... which is the client's receive key.
    assert_eq!(
        get_asymmetric_start_key(&master, 16, false, false),
        server_send
    );
    let client_send = get_asymmetric_start_key(&master, 16, true, false);
    assert_eq!(
        &client_send[..],
        &hex::<16>("D5 F0 E9 52 1E 3E A9 58 96 45 E8 60 51 C8 22 26")
    );
    let server = StartKeys::from_mschapv2(&hash, &nt_response(), true);
    let client = StartKeys::from_mschapv2(&hash, &nt_response(), false);
    assert_eq!(server.send, client.recv);
    assert_eq!(server.recv, client.send);
    assert_eq!(server.send[..], server_send[..]);
    assert_eq!(format!("{server:?}"), "StartKeys(<redacted>)");

    // s3.5.1..3.5.3 session keys and the sample encrypted "test message".
    let start: [u8; 16] = server.send;
    for (strength, key, cipher) in [
        (
            KeyStrength::Bits40,
            "D1 26 9E C4 9F A6 2E 3E",
            Some("92 91 37 91 7E 58 03 D6 68 D7 58 98"),
        ),
        // The RFC's 56-bit ciphertext example has a typo in its last octets.
        (KeyStrength::Bits56, "D1 5C 00 C4 9F A6 2E 3E", None),
        (
            KeyStrength::Bits128,
            "40 5C B2 24 7A 79 56 E6 E2 11 00 7A E2 7B 22 D4",
            Some("81 84 83 17 DF 68 84 62 72 FB 5A BE"),
        ),
    ] {
        let mut session = SessionKey::new(&start, strength);
        let want: Vec<u8> = key
            .split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
        assert_eq!(session.current(), &want[..], "{strength:?}");
        let mut msg = *b"test message";
        session.apply(&mut msg);
        if let Some(cipher) = cipher {
            assert_eq!(msg, hex::<12>(cipher), "{strength:?}");
        }
    }
    assert_eq!(
        &get_new_key_from_sha(&start[..8], &start[..8], 8)[..],
        &hex::<8>("96 5C 00 C4 9F A6 2E 3E")
    );
}

#[test]
fn rekey_changes_key_and_is_deterministic() {
    let start = [7u8; 16];
    let mut a = SessionKey::new(&start, KeyStrength::Bits128);
    let mut b = SessionKey::new(&start, KeyStrength::Bits128);
    let k0 = a.current().to_vec();
    a.rekey();
    b.rekey();
    assert_ne!(a.current(), &k0[..]);
    assert_eq!(a.current(), b.current());
    let mut c = SessionKey::new(&start, KeyStrength::Bits40);
    c.rekey();
    assert_eq!(&c.current()[..3], &[0xd1, 0x26, 0x9e]);
    let mut data = *b"hello";
    Rc4::new(&[1; 16]).unwrap().apply(&mut data);
    Rc4::new(&[1; 16]).unwrap().apply(&mut data);
    assert_eq!(&data, b"hello");
}
