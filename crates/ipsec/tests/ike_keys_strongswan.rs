//! IKEv1 keying (crates/ipsec/src/ike/keys.rs) against values captured
//! from strongSwan 5.9.8: every output derived here from the exchange's
//! inputs and compared with what charon computed.
//!
//! How the values were captured: a copy of ../shared/lab/peers/
//! strongswan-pair.sh and its lib.sh (two charons in network namespaces of
//! their own, kernel-libipsec, PSK "lab-psk-0123456789", IDs "left" and
//! "right", left initiating), changed only in its namespace names and
//! state directory, in the plugins loaded (`gcrypt` added: this host's
//! strongSwan has no `des` or `openssl` plugin, and without one charon
//! refuses 3DES with "ENCRYPTION_ALGORITHM 3DES_CBC (key size 0) not
//! supported!") and in its charon log levels (`ike = 4`, `chd = 4`,
//! `enc = 4`, `net = 4`, `lib = 4`). Then `strongswan-pair.sh up PROFILE`
//! and `down` for three IKEv1 Main Mode proposals:
//!
//! - `ikev1-l2tp-tunnel` unchanged: IKE 3des-sha1-modp1024, ESP 3des-sha1;
//! - IKE aes256-sha1-modp2048, ESP aes256-sha256;
//! - IKE aes128-sha256-modp2048, ESP aes128-sha256-modp1024 (PFS).
//!
//! The values come from the initiator's charon.log: keymat_v1.c's DBG4
//! dumps ("shared Diffie Hellman secret", "SKEYID", "SKEYID_d/a/e",
//! "encryption key Ka", "initial IV", "HASH_I data", "HASH_I", "HASH_R",
//! "next IV for MID", "Hash(1)/(2)/(3)", "DH secret", "initiator/responder
//! SA seed", the "encryption/integrity initiator/responder key"s) and the
//! generator's and parser's DBG4 dumps of each payload (SA, KE, Nonce, ID)
//! and of each encrypted message ("IV", "plain", "padding", "encrypted").
//! The capture script checked on the way that "HASH_I data" and "HASH_R
//! data" are exactly g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b (and the
//! responder's order) from those payloads, and that the SA seeds hold the
//! Quick Mode nonces. Quick Mode's `rest` is the decrypted message after
//! the HASH payload up to the end of the payload chain (the padding cut).

use tsunagi_ipsec::ike::keys::{self, Phase1Input, Phase1Keys};
use tsunagi_ipsec::isakmp::proposal::{Encryption, Integrity};

/// One exchange as strongSwan logged it (hex).
struct Capture {
    hash: Integrity,
    cipher: Encryption,
    psk: &'static str,
    cky_i: &'static str,
    cky_r: &'static str,
    /// The initiator's SA payload body.
    sa_i_b: &'static str,
    g_xi: &'static str,
    g_xr: &'static str,
    g_xy: &'static str,
    ni: &'static str,
    nr: &'static str,
    id_ii_b: &'static str,
    id_ir_b: &'static str,
    skeyid: &'static str,
    skeyid_d: &'static str,
    skeyid_a: &'static str,
    skeyid_e: &'static str,
    enc_key: &'static str,
    iv: &'static str,
    hash_i: &'static str,
    hash_r: &'static str,
    /// Main Mode message 5 as the initiator encrypted it: the IV, the
    /// payloads, the ciphertext.
    m5_iv: &'static str,
    m5_plain: &'static str,
    m5_encrypted: &'static str,
    /// Message 6 as received and as decrypted (with its padding).
    m6_encrypted: &'static str,
    m6_plain: &'static str,
    /// The last CBC block of Phase 1 (message 6's).
    last_p1_block: &'static str,
    /// Quick Mode: the IV of its first message.
    qm_iv: &'static str,
    /// Message 1's payloads after HASH(1), and HASH(1).
    qm1_rest: &'static str,
    hash1: &'static str,
    /// Message 2's payloads after HASH(2), and HASH(2).
    qm2_rest: &'static str,
    hash2: &'static str,
    qm_ni: &'static str,
    qm_nr: &'static str,
    hash3: &'static str,
    /// KEYMAT of the initiator's outbound SA (encryption key | integrity
    /// key) and of the responder's.
    keymat_i: &'static str,
    keymat_r: &'static str,
    message_id: u32,
    /// g(qm)^xy with PFS.
    g_qm: Option<&'static str>,
    protocol: u8,
    /// The SPI of the initiator's outbound SA (the responder chose it) and
    /// of the responder's outbound SA.
    spi_i: u32,
    spi_r: u32,
    /// The ESP encryption key's length within KEYMAT.
    enc_len: usize,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn cookie(s: &str) -> [u8; 8] {
    unhex(s).try_into().expect("8 octets")
}

/// The owned inputs of one capture, borrowed by a [`Phase1Input`].
struct Inputs {
    psk: Vec<u8>,
    ni: Vec<u8>,
    nr: Vec<u8>,
    g_xy: Vec<u8>,
    g_xi: Vec<u8>,
    g_xr: Vec<u8>,
}

impl Inputs {
    fn new(c: &Capture) -> Inputs {
        Inputs {
            psk: unhex(c.psk),
            ni: unhex(c.ni),
            nr: unhex(c.nr),
            g_xy: unhex(c.g_xy),
            g_xi: unhex(c.g_xi),
            g_xr: unhex(c.g_xr),
        }
    }

    fn phase1<'a>(&'a self, c: &Capture) -> Phase1Input<'a> {
        Phase1Input {
            hash: c.hash,
            cipher: c.cipher,
            psk: &self.psk,
            ni: &self.ni,
            nr: &self.nr,
            g_xy: &self.g_xy,
            g_xi: &self.g_xi,
            g_xr: &self.g_xr,
            cky_i: cookie(c.cky_i),
            cky_r: cookie(c.cky_r),
        }
    }
}

fn phase1_keys(c: &Capture) -> Phase1Keys {
    let inputs = Inputs::new(c);
    keys::phase1_psk(&inputs.phase1(c)).expect("a Phase 1 suite")
}

const CAPTURES: [(&str, Capture); 3] = [
    ("3des-sha1-modp1024", MAIN_3DES_SHA1_MODP1024),
    ("aes256-sha1-modp2048", MAIN_AES256_SHA1_MODP2048),
    (
        "aes128-sha256-modp2048, PFS modp1024",
        MAIN_AES128_SHA256_MODP2048_PFS_MODP1024,
    ),
];

#[test]
fn skeyids_key_and_first_iv() {
    for (name, c) in &CAPTURES {
        let k = phase1_keys(c);
        assert_eq!(k.skeyid.as_slice(), unhex(c.skeyid), "{name}: SKEYID");
        assert_eq!(k.skeyid_d.as_slice(), unhex(c.skeyid_d), "{name}: SKEYID_d");
        assert_eq!(k.skeyid_a.as_slice(), unhex(c.skeyid_a), "{name}: SKEYID_a");
        assert_eq!(k.skeyid_e.as_slice(), unhex(c.skeyid_e), "{name}: SKEYID_e");
        assert_eq!(k.enc_key.as_slice(), unhex(c.enc_key), "{name}: Ka");
        assert_eq!(k.iv, unhex(c.iv), "{name}: initial IV");
    }
}

#[test]
fn the_key_is_expanded_when_skeyid_e_is_short() {
    // 3DES (24) and AES-256 (32) with SHA-1 (20) need K1 | K2; AES-128
    // with SHA-256 takes SKEYID_e's first 16 octets.
    let (_, c) = &CAPTURES[0];
    assert!(unhex(c.enc_key).len() > unhex(c.skeyid_e).len());
    let (_, c) = &CAPTURES[1];
    assert!(unhex(c.enc_key).len() > unhex(c.skeyid_e).len());
    let (_, c) = &CAPTURES[2];
    assert_eq!(unhex(c.enc_key), unhex(c.skeyid_e)[..16]);
}

#[test]
fn hash_i_and_hash_r() {
    for (name, c) in &CAPTURES {
        let inputs = Inputs::new(c);
        let input = inputs.phase1(c);
        let k = keys::phase1_psk(&input).unwrap();
        let sa_i_b = unhex(c.sa_i_b);
        let hash_i = keys::phase1_hash(&k, &input, true, &sa_i_b, &unhex(c.id_ii_b)).unwrap();
        assert_eq!(hash_i, unhex(c.hash_i), "{name}: HASH_I");
        let hash_r = keys::phase1_hash(&k, &input, false, &sa_i_b, &unhex(c.id_ir_b)).unwrap();
        assert_eq!(hash_r, unhex(c.hash_r), "{name}: HASH_R");
    }
}

#[test]
fn main_mode_messages_5_and_6() {
    for (name, c) in &CAPTURES {
        let k = phase1_keys(c);
        // Message 5 is the first encrypted one: its IV is Phase 1's.
        assert_eq!(unhex(c.m5_iv), k.iv, "{name}");
        let mut iv = k.iv.clone();
        let encrypted = keys::encrypt(&k, &mut iv, &unhex(c.m5_plain)).unwrap();
        assert_eq!(encrypted, unhex(c.m5_encrypted), "{name}: message 5");
        assert_eq!(iv, encrypted[encrypted.len() - iv.len()..], "{name}");
        // Message 6's IV is message 5's last block.
        let m6 = unhex(c.m6_encrypted);
        let plain = keys::decrypt(&k, &mut iv, &m6).unwrap();
        assert_eq!(plain.as_slice(), unhex(c.m6_plain), "{name}: message 6");
        assert_eq!(iv, unhex(c.last_p1_block), "{name}: last Phase 1 block");
    }
}

#[test]
fn quick_mode_iv_hashes_and_keymat() {
    for (name, c) in &CAPTURES {
        let k = phase1_keys(c);
        let iv = keys::phase2_iv(&k, &unhex(c.last_p1_block), c.message_id).unwrap();
        assert_eq!(iv, unhex(c.qm_iv), "{name}: Quick Mode IV");

        let (ni, nr) = (unhex(c.qm_ni), unhex(c.qm_nr));
        let hash1 = keys::qm_hash(&k, c.message_id, None, &unhex(c.qm1_rest)).unwrap();
        assert_eq!(hash1, unhex(c.hash1), "{name}: HASH(1)");
        let hash2 = keys::qm_hash(&k, c.message_id, Some(&ni), &unhex(c.qm2_rest)).unwrap();
        assert_eq!(hash2, unhex(c.hash2), "{name}: HASH(2)");
        let hash3 = keys::qm_hash3(&k, c.message_id, &ni, &nr).unwrap();
        assert_eq!(hash3, unhex(c.hash3), "{name}: HASH(3)");

        let g_qm = c.g_qm.map(unhex);
        let expected_i = unhex(c.keymat_i);
        let keymat_i = keys::keymat(
            &k,
            g_qm.as_deref(),
            c.protocol,
            c.spi_i,
            &ni,
            &nr,
            expected_i.len(),
        )
        .unwrap();
        assert_eq!(keymat_i.as_slice(), expected_i, "{name}: initiator KEYMAT");
        let expected_r = unhex(c.keymat_r);
        let keymat_r = keys::keymat(
            &k,
            g_qm.as_deref(),
            c.protocol,
            c.spi_r,
            &ni,
            &nr,
            expected_r.len(),
        )
        .unwrap();
        assert_eq!(keymat_r.as_slice(), expected_r, "{name}: responder KEYMAT");
        // The two directions differ only by SPI; the encryption key is
        // KEYMAT's first octets.
        assert_ne!(keymat_i[..c.enc_len], keymat_r[..c.enc_len]);
    }
}

const MAIN_3DES_SHA1_MODP1024: Capture = Capture {
    hash: Integrity::Sha1,
    cipher: Encryption::TripleDes,
    psk: "6c61622d70736b2d30313233343536373839",
    cky_i: "6788ae216b828564",
    cky_r: "cd22eb6a922afe46",
    sa_i_b: concat!(
        "0000000100000001000000280101000100000020010100008001000580020002",
        "8004000280030001800b0001800c3de0",
    ),
    g_xi: concat!(
        "fefa8bb8ee089b4b3fb828d19b22e4afcd6d7f67a78f1708ec179a58bb34ff1c",
        "4aeef8bebde9073da98f5d5c2e12d5bb1f49a22b482cf158aebd9af844971146",
        "55a4c1843bb979fe2e1c2962adf2ca29c2b142f29b3e000260dbd30316f47cf8",
        "d4bf1ef4c8435381dcf920347dba72b95441d8de2fa73bac5ee524a0bba6fe8a",
    ),
    g_xr: concat!(
        "fac337681bc4d0e776beecc8e48af9f803d11820494f83c7b7a793b15037bfe9",
        "64bbd17054c46fac4c68899fe0454e87ac707df1ed4f310423879a99e14205ac",
        "9216333ad5b21431cc13e32a08aa98033a0b610b2ff70b07ff7261d4a8f228f8",
        "b9e8b24fc93b84a7e5b11bbbc4ca20b4794d857255550820dff18b8722d500da",
    ),
    g_xy: concat!(
        "da6367641ec102e075322a0f89402ce50fd240d311f810f0dff8f723caa69370",
        "91db260d0400fcc32f578bfb427c91a7cc34cd268ddb5c18c11d6e9c846f542d",
        "6571e2482f881352af55fd9887cf79264a45a72f7f8bdf204879ec25563e0dc9",
        "1c58ba68eb6d9243938335fbfa8b5738bb9652e2d6c871c742f2a7010e85ea87",
    ),
    ni: "585ff194d9db4d2df7f3fdb42f7c89db59c93fd3454af8a2fcf9676140ab0118",
    nr: "397fabe0292476dd37cc8003adf0a512889fa6fa2311de1bc77e2db97c642c3a",
    id_ii_b: "020000006c656674",
    id_ir_b: "020000007269676874",
    skeyid: "19f4fa350a3367ae49db00e5baee82f0d75f62c2",
    skeyid_d: "6c469b800f61b5a3d506cb3d47b89c47e9599288",
    skeyid_a: "7ce69cf1bdcc2caa9bdb004c3b4e7d7b06d47022",
    skeyid_e: "ae8e5580eadaed8b9a1cfa2a78a8ad60e817c281",
    enc_key: "c2a0da86d1db97c2afc29dc47957a426b4a5b5b98b15e8a6",
    iv: "637fd98830f65164",
    hash_i: "c0de5fc153ab3a0e8ec10c0363523c3f6e6e3d46",
    hash_r: "8dfcd5bbcd71e4e9f5cfec8825c7fd42d082e290",
    m5_iv: "637fd98830f65164",
    m5_plain: concat!(
        "0800000c020000006c6566740b000018c0de5fc153ab3a0e8ec10c0363523c3f",
        "6e6e3d460000001c00000001011060026788ae216b828564cd22eb6a922afe46",
    ),
    m5_encrypted: concat!(
        "81b1004a8f53d62d816e63af9f91dc432d99a49df0e288ba2f0be36579651dbd",
        "20bbf870bcd99fb15681c4311898f06f682956c67bb562812e8a50e540eaba82",
        "7b5b6afd7f08fce5",
    ),
    m6_encrypted: concat!(
        "af42861660a3cecc0d3cc391bb7e0a81c24b724e4e58c94ae0b972ca24047d79",
        "30f8f24d841c3728",
    ),
    m6_plain: concat!(
        "0800000d020000007269676874000000188dfcd5bbcd71e4e9f5cfec8825c7fd",
        "42d082e290000000",
    ),
    last_p1_block: "30f8f24d841c3728",
    qm_iv: "6f00594c64ce68c8",
    qm1_rest: concat!(
        "0a00004c000000010000000100000040010304024ff48dcf0300001801030000",
        "80050002800400038001000180020f780000001c020c00008006008080050002",
        "800400038001000180020f78050000245992ade2cef2cee2ab02b922bac8bdc7",
        "266a2a2a61a30c5703f9428ed981f7140500000c011106a50ac901010000000c",
        "011106a50ac90102",
    ),
    hash1: "24083114bc387103ed5695b549236a8eb568ad92",
    qm2_rest: concat!(
        "0a000030000000010000000100000024010304010e7e72ff0000001801030000",
        "80050002800400038001000180020f78050000243b6d10b5fa5a3642572ce301",
        "84d76171b0779f56de6c2a2e662f00b9a56f771e0500000c011106a50ac90101",
        "0000000c011106a50ac90102",
    ),
    hash2: "fde43f120915ae752ba44caea618d8123f9abcb8",
    qm_ni: "5992ade2cef2cee2ab02b922bac8bdc7266a2a2a61a30c5703f9428ed981f714",
    qm_nr: "3b6d10b5fa5a3642572ce30184d76171b0779f56de6c2a2e662f00b9a56f771e",
    hash3: "f05f5f400819f7cff77e8ad879ddc88407c54433",
    keymat_i: concat!(
        "36ae915fd7e9d87ed260abb310e68268f3c5084f197074ebd89ac03365cba927",
        "6984f74e30bdb34ac702e5dc",
    ),
    keymat_r: concat!(
        "8544b4485b9da9ccb7ac29736362c011857f361c1219c28215dba85b83c0d179",
        "315ee33bb3bbf315ecceec52",
    ),
    message_id: 3862462181,
    g_qm: None,
    protocol: 3,
    spi_i: 0x0e7e72ff,
    spi_r: 0x4ff48dcf,
    enc_len: 24,
};

const MAIN_AES256_SHA1_MODP2048: Capture = Capture {
    hash: Integrity::Sha1,
    cipher: Encryption::AesCbc(256),
    psk: "6c61622d70736b2d30313233343536373839",
    cky_i: "cf1944055154401b",
    cky_r: "d2d0e2f326f6b5ab",
    sa_i_b: concat!(
        "00000001000000010000002c01010001000000240101000080010007800e0100",
        "800200028004000e80030001800b0001800c3de0",
    ),
    g_xi: concat!(
        "618ba28cc3c2346532f7790f8a763d9efb3fb477916947377baafaf8dd31b1b4",
        "4f87052b3e76d61f8c898d7851c160d567e47a5868d2c80b79bde81e9c1b0e25",
        "c0105ff0db96a10afca988a2b25a241aff60c6e8116d1c56b00713425c95c5df",
        "5601c9e7588683af7bbb10bd55e102efb8028c151349bbc20e0e56063a8a8348",
        "ef1cf581a8be8cf8bda61993d82e608d4afe1369f464f358bd05330f6898cf0d",
        "78071505a82f402fbfa144cb012e61eecc489ccae37de8df82afb0bde2d0c0f0",
        "62376c6acf7b38608840759bcba1a332f3a43e296a0731dc98f7f6524a460e76",
        "1e2978e425e453f530cb08086e063f49a545e3d2c3ba61462a3e0fb59b70057a",
    ),
    g_xr: concat!(
        "1af3d2b19d66238f9316899c3feb4d0235f0dd09f2ba335e8a90eebe7d2858fa",
        "21cfb93800a6a4354e854c90f72cd46c1780a59cbe803b5544eb0d18ad34e26d",
        "d4cb4ab7a31e7a2042058e9abd5cf23149267a7540e283013777c84de5aa7f31",
        "b18d0d8d41adcb6a35d36f36814a234863756072d0a76462e9903149d47584f0",
        "424c4134a89b151d444dc3b1d8f29a7a252a69d17017ae929febc667f389fde7",
        "de21f1ba6744b7bf97200819fe993ee30161eaf35a5a66c5f21c2eb634de5635",
        "3bef00d980906ebb91684bf17605efc4ea032e381bbfd6de1e6a40666fce1ea3",
        "4419d95c1298b5b75bdbe5ec537e349cb3d762adbdbce6e7c74d32ae5a325acf",
    ),
    g_xy: concat!(
        "768645395ab3f7889f06c13c0ba726d3203acd21fabdaf29f8bc98fdcbb54887",
        "11e35e65e6e979c03d4a4cd3900e35e750214c01befeec43676881d635a5ab6a",
        "eb20c31cb3bff20f46d4c9697c5dde03d76375e65f9f5cf6218f080c623561b5",
        "720d1b620347678800eb734a6d98f5af5621c9fc45878622a42f1d2530c5e1cd",
        "9c19abe601a81ef7968f6dd0fe219c75cff5fd814cd80382b04aba31e35e6e38",
        "13c5006cf5e96002b9c217a119dddd44bc7b125b8ef561c940db6bd4eb6cb923",
        "3ffce0aa877304641fe8c355c6ff8ac5d19a095498d26e0049bbfdd63b9307e6",
        "74d6d96909a46c13dbed41f9b0c0cc4423fb9dac064339fd4b6d9739cec81f04",
    ),
    ni: "635c31f6cef4b5ca115b1d2c7c27d3c4177d1025fb06765de3d4bfa30bd20dd1",
    nr: "3bc56be1ea18b96ac688c4fd1906ee96aba6af08c5f14e73deac1a1d8e1bed80",
    id_ii_b: "020000006c656674",
    id_ir_b: "020000007269676874",
    skeyid: "a9bb01fb04f0ca919162a653170c318c6150bad9",
    skeyid_d: "47935448f9601d3e819cabf9e4ffffcd46a1e87d",
    skeyid_a: "d00ebad7d2584c17ac2cfebb8ceff444e6a53a59",
    skeyid_e: "cc6f690cb65140370762157dc67c199706130da9",
    enc_key: "2c4b1fdbbb4f4fede1d1912c012a7743610c267a469183da18725dff6670fe9d",
    iv: "1c6168682d31ec75a6215218c6fa81d6",
    hash_i: "326d02b77822d64075df982e10c818bc2050d1bc",
    hash_r: "8b8a83df345263c33ec5f977ca46ec43e515f8ec",
    m5_iv: "1c6168682d31ec75a6215218c6fa81d6",
    m5_plain: concat!(
        "0800000c020000006c6566740b000018326d02b77822d64075df982e10c818bc",
        "2050d1bc0000001c0000000101106002cf1944055154401bd2d0e2f326f6b5ab",
    ),
    m5_encrypted: concat!(
        "0a4f760399f50b6b89496054782a8ea4f86708375b47f5bfaece8498e7aa29a3",
        "f9ec616cf79b9459c8083962016e538b846b4ee0daf512465be4f5df3789fe02",
        "b538a9522bb6c97cbc300f7b8c9a14d4",
    ),
    m6_encrypted: concat!(
        "ad5b98c7146d2e7f1f96fa53c9c6ee7efadf2573e6db1fd46d1b073db184202d",
        "f53e9f68c6da799f10f7f8f90a6498c3",
    ),
    m6_plain: concat!(
        "0800000d020000007269676874000000188b8a83df345263c33ec5f977ca46ec",
        "43e515f8ec0000000000000000000000",
    ),
    last_p1_block: "f53e9f68c6da799f10f7f8f90a6498c3",
    qm_iv: "047575f675406ab1ee7f07be032d1f18",
    qm1_rest: concat!(
        "0a00003400000001000000010000002801030401483073b40000001c010c0000",
        "8006010080050005800400038001000180020f78050000249d4eab567236a40a",
        "0113d35cc5e7e4d9be3e45d6db2cc1450c8356a7f5a53f610500000c011106a5",
        "0ac901010000000c011106a50ac90102",
    ),
    hash1: "1a2c1c9822e71f9cc9c0125b90be69fe55229a44",
    qm2_rest: concat!(
        "0a00003400000001000000010000002801030401ab547c850000001c010c0000",
        "8006010080050005800400038001000180020f7805000024579c9b2675119dff",
        "513a921642651b83283ff184a19164204be1c494cc4900ce0500000c011106a5",
        "0ac901010000000c011106a50ac90102",
    ),
    hash2: "be4b1bb0ffd1a9cbbfed68ef444b6e61025045e8",
    qm_ni: "9d4eab567236a40a0113d35cc5e7e4d9be3e45d6db2cc1450c8356a7f5a53f61",
    qm_nr: "579c9b2675119dff513a921642651b83283ff184a19164204be1c494cc4900ce",
    hash3: "217d7c8f2f3a4f5bfa8ba3d114514b97afb4cc02",
    keymat_i: concat!(
        "a3d747483813776c1418bd14c66ef2b0bf5f75eb819dadea6cfa9442842f5332",
        "c8ca7c17b67f1d3f2d20285cf6a428f4cbe664958087909a448c64496fb4e396",
    ),
    keymat_r: concat!(
        "11fbfc07005fcf73584f0689503acff5810128c813dec4757676da3f939e0b09",
        "412c74a7017b3a5ed60942415e126e8efc984fdd9bf8c6e67bf0adf854792603",
    ),
    message_id: 2228280475,
    g_qm: None,
    protocol: 3,
    spi_i: 0xab547c85,
    spi_r: 0x483073b4,
    enc_len: 32,
};

const MAIN_AES128_SHA256_MODP2048_PFS_MODP1024: Capture = Capture {
    hash: Integrity::Sha256,
    cipher: Encryption::AesCbc(128),
    psk: "6c61622d70736b2d30313233343536373839",
    cky_i: "a0f823caa8c8fc3a",
    cky_r: "6cb094dfedeb5f02",
    sa_i_b: concat!(
        "00000001000000010000002c01010001000000240101000080010007800e0080",
        "800200048004000e80030001800b0001800c3de0",
    ),
    g_xi: concat!(
        "6cf242a15c2a015a0e709b91fb68fa7c46f11e8727d1e290554038f81f33e2ab",
        "c00d6f106dfb727a32485e84c280d0e79f121e1d9fa2d6b7036ec3638c8d095c",
        "539238eb6d431800f1a7bd4f85fa38f27073b2584df26d59a18b1bf0c20e7f56",
        "6f717ab564196eda6bfb2fbf06d6d6e1a56efa705cf6886734bcbb0123806169",
        "15298c009eed162d1453396dfae8d646c2dca718585d9c9d094d9d76b3bb0343",
        "8264da1c5ef1b259e31d12f2fd174d577633b332d9786543607619d90abe48cc",
        "ffb148bf1076d036705d2bcc6aa346610eb2c4ac74bfc4c8ddef1869de9c2788",
        "958c73343d1a5a511dd146da5da06b9d69ee8ac5360d987eb9f470b9200b3c96",
    ),
    g_xr: concat!(
        "588cd616e86f1bb5d9d39ba05aadef523f28a7214f0fcfaa44c68fc32376b699",
        "01832459a3c1f15438252ca987f93d162454eb47431740c12f617585efb53701",
        "ab9a1ce0c8c43c9a74f8b9fa108fc806c86c8ed39a7396687d2ee00a37de65c5",
        "845b6e8c052ab5321715ca4a9f5dd3c5ddcbc23755ad3df59a6098cb180cc63a",
        "41984e3baa5fee7a44053d34a6390d8b643f45f6e53f9e69a787ccd4b7a259f8",
        "fd53fdc1c5f4e6683d9c4522ed1434940bd258d962a022231341e9cc14bab179",
        "c1350d2479230dc50d11c94e611f452b251c795026c8d79aed60a3d6e26df5e2",
        "895d68ba6c41adff1462a3b85433a16505b6745f5c582225ba7170dfa204504f",
    ),
    g_xy: concat!(
        "b4ee35228b1a57fa4989b084b3a70a2342247b91d5cb7ed5fddc77f022b718ef",
        "83c2640362fe2e102bf6c9fd59db607de40a877f0a14063f85ce291a6e6e3a49",
        "73aef1c09b60d102c2f8f99fe02b98cb0cde48c484d052a20a4113601e172185",
        "523985611524c788f8583c327eaef8e133061dd01054363bf79ff65d3c956fa4",
        "9fefd14ea82c6083c68f723e3c3db05c967b3cc64e850ac99af45bf903bcf990",
        "fd5a4f2d871de4b0cc678b18bbb59700941b85371be8c2d8571a717903e0b8ca",
        "61670af732c020f4bb78babd8d8e68025089a7e7013f4e6befe2bafbcb1b3845",
        "9c7c70aad690f3308591fd86b2223ac726dc5cd2a79d2924cc6eb34e3af466c8",
    ),
    ni: "6c8313e91654785fc236e45387d881a99b0207308fa251676917cf3339c3a427",
    nr: "38af2296a18ab139b56d535e5bdebfed980e66bc2db8f1c53be1acd2c3d9d364",
    id_ii_b: "020000006c656674",
    id_ir_b: "020000007269676874",
    skeyid: "7e3edbc591cdcd7b4f2dc9d955207b17b5dcadc51620c767fbb32fcb390f4379",
    skeyid_d: "94991158d583c42aa13df98c2e28e33d2d2c12685ec9c83e76aad036f6d40034",
    skeyid_a: "55fbb0e93093823dcd51928ade93d2d695b0963f23980df7e2ff79ed028e4bd0",
    skeyid_e: "87a6560a938482aead314e7d188d6360837c9ecc00397409c48590d79270cb1a",
    enc_key: "87a6560a938482aead314e7d188d6360",
    iv: "363b7b0e8781fbf817c72831ed7e9b10",
    hash_i: "8ec0507efc4d77918c6a42e23f5e392c990a73d0fa42a9b07f045563141b584a",
    hash_r: "836871de3550ac2af63493ca164841c03c9a2d2fe76546e545d4393ddcecb3ed",
    m5_iv: "363b7b0e8781fbf817c72831ed7e9b10",
    m5_plain: concat!(
        "0800000c020000006c6566740b0000248ec0507efc4d77918c6a42e23f5e392c",
        "990a73d0fa42a9b07f045563141b584a0000001c0000000101106002a0f823ca",
        "a8c8fc3a6cb094dfedeb5f02",
    ),
    m5_encrypted: concat!(
        "a134d1311c944f40976773ef05814f7baa1dae619122a5bd9b9543b7e4d69fd6",
        "d9ea1e995ad69952eb67c6f28a2d392c57a5b77df0ef0f4287a30c13091a2769",
        "d525f7cd31eff98559b90e4c6a4286e6",
    ),
    m6_encrypted: concat!(
        "5a0e2b8955c1a5f18818155b40fa53b4315d3e6bee2421b519f44403145ed9a2",
        "969cc991f07b879c1b0120b61e192626386c43015ccf4cdbe246c8f263a717ea",
    ),
    m6_plain: concat!(
        "0800000d02000000726967687400000024836871de3550ac2af63493ca164841",
        "c03c9a2d2fe76546e545d4393ddcecb3ed000000000000000000000000000000",
    ),
    last_p1_block: "386c43015ccf4cdbe246c8f263a717ea",
    qm_iv: "caa7d84325a160916e8213657c46f695",
    qm1_rest: concat!(
        "0a00003800000001000000010000002c01030401e51846a700000020010c0000",
        "800600808005000580030002800400038001000180020f78040000245fd2deee",
        "7ab90135c02b4e6dc3b957d2bc208db55b9f71d2d48ea753b3c7eb6405000084",
        "11a70d2ea6c8b60d3a988c02b42369416ee3017685a75496fd2621372b74f63b",
        "043d7a76a2485d1b7d8521a592e83531b1efcd5340a9c81acab6e0d31c64fb77",
        "969ca4dd54c378bd79deea65339846426336a02086841d35d129fa0e8bd6bc40",
        "e60fa761abf8a6ee3e91d42ae7b3e5b568623b98b96a1585a84720ccc101f704",
        "0500000c011106a50ac901010000000c011106a50ac90102",
    ),
    hash1: "9734aa5ed99cc18c85cff0f5eed243dc4daf0f5162d0261bedee997cbe60e26f",
    qm2_rest: concat!(
        "0a00003800000001000000010000002c01030401212267ac00000020010c0000",
        "800600808005000580030002800400038001000180020f7804000024ac3fd893",
        "c36c11aaba84b4bd3cec305145fc7dcd5a15370103ab8cba57c8e2e105000084",
        "fc6b7f168df004f069a15b67ff76972fdfaaca0457e7d6ac25f48ae50694c5bd",
        "974964dc38331ee6b01030812393fe811e172a80993f3bb7188fda53692e33fd",
        "cb6bd7e06cfb3ad08c43b36636ad84a437c63c5bf2365f341f6094ec34a928f8",
        "cca896f28b56c66e46e48f41bc1c64a4e06817841900c67d1e6527df7a3849d3",
        "0500000c011106a50ac901010000000c011106a50ac90102",
    ),
    hash2: "18ba1fdf5c7e4818d3b7f29dd0c0cdd47a1448d87a04a3e6e1af6490b93a6afd",
    qm_ni: "5fd2deee7ab90135c02b4e6dc3b957d2bc208db55b9f71d2d48ea753b3c7eb64",
    qm_nr: "ac3fd893c36c11aaba84b4bd3cec305145fc7dcd5a15370103ab8cba57c8e2e1",
    hash3: "c16bfed13835443161125efcd9d1afce7ee078bf61511f111a9783491d5550f2",
    keymat_i: concat!(
        "4c680d0f7147454fe8c0682dc93f9369b241200f224d1467edf82cae0515a9c4",
        "8139ce6f557abb0c12c04d9506ed0a77",
    ),
    keymat_r: concat!(
        "0c0f38a4814f463640f741825ee4657da2141a0e48732632d8295d3e3e95f268",
        "e28886d6db0c1e4f9716e33111c3b57e",
    ),
    message_id: 425716866,
    g_qm: Some(concat!(
        "194e46ef9cefae9c625497176ac291a8b02a0deca89d5dcb53da0dddec5f3820",
        "f617bf3d45a9b0568f05415389c7d26a9f30f19d6e2f51a237ee72bd2eafee47",
        "ed16da26fba0c1d881ffdcbed93ae60984d07c999ec5d4ea4e862bea38328ce3",
        "020d26a5cf96fbddf1fd0c2c161c5d25f3bac76b3cc67973982a0c07803b6a5a",
    )),
    protocol: 3,
    spi_i: 0x212267ac,
    spi_r: 0xe51846a7,
    enc_len: 16,
};
