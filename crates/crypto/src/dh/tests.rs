//! Diffie-Hellman: RFC 5903's ECP-256 vector, MODP known answers computed
//! independently, agreement between two parties, and refused peer values.

use super::*;
use crate::random::OsRandom;

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// RFC 5903 s8.1: the 256-bit random ECP group's test vector. The KE data
/// is g^i x | g^i y; the shared secret is the x of g^ir.
#[test]
fn rfc5903_ecp256_vector() {
    let i = unhex("C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433");
    let gi = unhex(concat!(
        "DAD0B653 94221CF9 B051E1FE CA5787D0 98DFE637 FC90B9EF 945D0C37 72581180",
        "5271A046 1CDB8252 D61F1C45 6FA3E59A B1F45B33 ACCF5F58 389E0577 B8990BB3",
    ));
    let r = unhex("C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53");
    let gr = unhex(concat!(
        "D12DFB52 89C8D4F8 1208B702 70398C34 2296970A 0BCCB74C 736FC755 4494BF63",
        "56FBF3CA 366CC23E 8157854C 13C58D6A AC23F046 ADA30F83 53E74F33 039872AB",
    ));
    let gir_x = unhex("D6840F6B 42F6EDAF D13116E0 E1256520 2FEF8E9E CE7DCE03 812464D0 4B9442DE");

    let initiator = DhPrivate::from_secret(DhGroup::Ecp256, &i).unwrap();
    let responder = DhPrivate::from_secret(DhGroup::Ecp256, &r).unwrap();
    assert_eq!(initiator.public_value(), gi.as_slice());
    assert_eq!(responder.public_value(), gr.as_slice());
    assert_eq!(initiator.shared_secret(&gr).unwrap().as_slice(), gir_x);
    assert_eq!(responder.shared_secret(&gi).unwrap().as_slice(), gir_x);
}

// Known answers for MODP 1024 and 2048, computed with Python's pow() when
// the test was written (exponents from SHA-512 of a label, top bit cleared):
// g^xi, g^xr and g^(xi*xr), each checked both ways there.
const MODP1024_XI: &str = concat!(
    "141b2942385ce3c0dc68316debb3b1d6ed438a1f7b3c51455cef76103102e00d",
    "339b5b487780d5b47446ac0bff7a9bff1eaa4e696fba6b1f7d060c94f7f1a793",
    "596455cca53b15f099e1c5c9462a111322456146aad653b5256a9f92a6deccd7",
    "77ee6c8b42d03bae44122ec35fd76945aa5cce740532642c83ce527e9019f6e5",
);

const MODP1024_XR: &str = concat!(
    "47f50b22e13791a2103a8502d44778fcfe309400a40fa8910acef265fbb5b325",
    "87d4df8066bf037cf5fd30750b7613d3c66ac0233f8b26401fa35d53b5e77d30",
    "9f43338feec26c5081609b77e11dcc4d486b4918368d069fbba2c37a3d138e59",
    "2c5abbcbc48bad85bff3c737773c36f3e868bc247c868d97826a6491e915ac4a",
);

const MODP1024_GI: &str = concat!(
    "7d2dc96d6fda26feee2adcb4a1fdef7808b4d2bf89e53933788a71868ce52fee",
    "d9868e1a4bdb006138c9ddd2ec2b5bf5032b88c5b77e7dec75ba49574ab00730",
    "3a126bde58362b54586058f64dcad91e278a0e88a818db8c5bdf7fd65c15c8ef",
    "a859ad626818a8c6d530f784fc17de900d10e1c8c4d9fbfb31ff6ba5c99b5fad",
);

const MODP1024_GR: &str = concat!(
    "217c5a6799b0285c1b692006f5173aaf250279687341346de64ad05f39feb853",
    "18fa21fd99de39579512a8658650fbd89b45b005ba1f7d4372eafc8355e6432b",
    "6c4c3372246bdf8b217d40049ab68095d132fbccaae6beb924bd03dc7dcfe45b",
    "205db010ef60650f1043863bfdd20841edc685d37cef30f5066000554a1b96fc",
);

const MODP1024_GIR: &str = concat!(
    "f8a6ac3005b13a097d94b113727982371d29fc5f995c3334e1f74807dcc0c8c2",
    "6822807555f56e3651efe7b3b7378e546e8749e6b145ba0d13450d7620fdb454",
    "382526567d8eb233b60475998987ebf2ff15c316af8b7d1d1cb038d683dc7057",
    "5c5761e3adc6b29fa71da4d87969b7dc3ac588cc473bf329cb30ad5c2d313bfb",
);

const MODP2048_XI: &str = concat!(
    "0b27f799584abe6171840b2c2caf187cd1f0fa53a3ab52096962479df69ef998",
    "a7a6b3fad9f38f2f4699b44a4484490351b81cbeb138f19f9cfde1f68f158c86",
    "e9ef363d2a0e1ee775dfdcb6a706a1a2566016a6f1935a32f00872d30ee7d8ab",
    "ea1900df92afdd7ed24630d83f502daab0ba43cce50501e14bf9c6b516c442dd",
    "e6798398706fe90a2eff0c984077cf9e3bb7370a64ef99c8276b359f7b5f97a6",
    "57c96902bc8111bbdaaa5b7cbbe04a4ad4b9af0c19cae559af32bb102132a2c1",
    "f6ee6a545a480861d67506cc870e1bb9930a24b3497653ef21b6b48b02a66414",
    "367c91977184428ab2bfbcd86af1b967d1e81a705d83bbe87c3c17db9307f7dc",
);

const MODP2048_XR: &str = concat!(
    "254547c8a53a429a70c5f5dd3516d84b8b38dab308bc7fe98af269899f803680",
    "550a14a4998b0769501a2b93307315e3646735c4fa4515f2ac704d16abdd0d2a",
    "f1dce488a61ec914719a3a16c139fd102a606a82a232627d6da5c7005ec2da0c",
    "9d4f793ef63fce5204a3fd159fb58544a49aeab2e6c70936a1aebb741f45a8e4",
    "f95cc818ff49d364551f941b11294c28b2aeb6281bc5d551d7402bf854677d81",
    "90fa5b3bab02cbe4a167414a50cc12c7e5158633675f290b0d65baf85e6fbb92",
    "f8860ece1903a488095cdaa39ba67ea50c63c2be905c4b9d4637a92cbd6f2da4",
    "16423c0395773df20035b26e2b5f5d9624c4a64582078719614009e9c6066392",
);

const MODP2048_GI: &str = concat!(
    "b42d9444b2493df1e63c276e2c5ee643aad971d52212fb1aa19c71a9d5e7e71b",
    "8c22300ea67aa32e8b18386a5e7bb2abfefb90b1b220b5fdbc5dd435d0a98a8b",
    "916154849012a626e8502ca92c09f68dcab2c383ba00590eb7eb02ed7cde5440",
    "b825f8c4a860c259b3ce56962960eed9408e32e83ab4195cab1d4a01778d915c",
    "02c98b8f205b73dcadfcd75e3270241a89e2b2bd25bebf0e73d52512b5d19a6d",
    "1ecbe27f4622f1f3bef8381442343538fa0accf511536b2ac987dc2c3af42275",
    "ddd1f99e6571c9c8613339fd972dafd71b3c16e3d1763e7362d9fe9cad8f11c9",
    "2120d3d886550397b789195b381cf3b632b02af6a979b4730b49457239265c81",
);

const MODP2048_GR: &str = concat!(
    "3c4bcca1b4ef8f7585d504123b39e84f8def0c79ea4aeb3b2eed62396e60b618",
    "699781e599127111ace6c7337997efbb1a80efe5bb2d5badfe13483e4c7427f3",
    "efdfa8bd8162b82c9f471887473097704dccaa3b8bcc943daf43f4b2b4eeb3ca",
    "adcd0b3883bd745639e4c757ceb0f43c46cc5bd61c9dfcfafbc486ad24c327bb",
    "8992a7a1ae252c3b4032db71c3cbf6362c2cdc339e3fae0075fccc3de5d19a5c",
    "673717cbe8f841273628a14c8e50db232bcf5e4a75d028fd1f45ca926c4b878a",
    "7b3f6742f6b3f8cc4de2e1a791d619d248e2d116149a9e3a35e3869a12f7e3e4",
    "5a127cafd4775fc812a3e2307e421169592d26734359fc6e006623261cfcc459",
);

const MODP2048_GIR: &str = concat!(
    "c7d8d00b6f5740824399f86b328cbab64459ccdd3581133326d48216b0a8ace4",
    "ea7ca2f2cb338825c3b63d6284910c3fb95b01675e918c808de701d21c464771",
    "d2a88021f5a7b98e92abfe8a9719a58bd028f664ea25740921e819436e653015",
    "3caf38f96164e7b266054482b7422d62f813e168b44d2897aa97b6565e960791",
    "d8be6fd60821d2d7d32fcc3fcbcbef40389cb41c92eee7dc79beca37429037de",
    "8e6e29c83f3d5dd2481fbbca16716bf859c5e205cda09f6da444dbb27528cc41",
    "ca6e746323abaea8f77a49dd0cbb0726b51c3dafcd2ac2a36e1e474ad2023992",
    "600a1b1d507fd06418172f1e41dfbf3278ef42615a8bfc247bb33dcf98588db2",
);

fn known_answer(group: DhGroup, xi: &str, xr: &str, gi: &str, gr: &str, gir: &str) {
    let initiator = DhPrivate::from_secret(group, &unhex(xi)).unwrap();
    let responder = DhPrivate::from_secret(group, &unhex(xr)).unwrap();
    assert_eq!(initiator.public_value(), unhex(gi).as_slice());
    assert_eq!(responder.public_value(), unhex(gr).as_slice());
    assert_eq!(
        initiator.shared_secret(&unhex(gr)).unwrap().as_slice(),
        unhex(gir)
    );
    assert_eq!(
        responder.shared_secret(&unhex(gi)).unwrap().as_slice(),
        unhex(gir)
    );
}

#[test]
fn modp1024_known_answer() {
    known_answer(
        DhGroup::Modp1024,
        MODP1024_XI,
        MODP1024_XR,
        MODP1024_GI,
        MODP1024_GR,
        MODP1024_GIR,
    );
}

#[test]
fn modp2048_known_answer() {
    known_answer(
        DhGroup::Modp2048,
        MODP2048_XI,
        MODP2048_XR,
        MODP2048_GI,
        MODP2048_GR,
        MODP2048_GIR,
    );
}

/// A random source that returns the same octets every time: `generate`
/// must still give a usable value.
struct Fixed(u8);

impl RandomSource for Fixed {
    fn fill(&self, dest: &mut [u8]) {
        dest.fill(self.0);
    }
}

#[test]
fn two_parties_agree_in_every_group() {
    let random = OsRandom;
    for group in [
        DhGroup::Modp1024,
        DhGroup::Modp1536,
        DhGroup::Modp2048,
        DhGroup::Ecp256,
    ] {
        let a = DhPrivate::generate(group, &random);
        let b = DhPrivate::generate(group, &random);
        assert_eq!(a.group(), group);
        assert_eq!(a.public_value().len(), group.public_len());
        assert_ne!(a.public_value(), b.public_value());
        let ab = a.shared_secret(b.public_value()).unwrap();
        let ba = b.shared_secret(a.public_value()).unwrap();
        assert_eq!(ab, ba, "{group:?}");
        assert_eq!(ab.len(), group.shared_len());
        assert!(ab.iter().any(|&b| b != 0));
    }
}

#[test]
fn generate_uses_the_random_source() {
    // 0x11 everywhere is a usable MODP exponent and ECP scalar: the public
    // value must be the one of that private value.
    for group in [DhGroup::Modp1024, DhGroup::Ecp256] {
        let drawn = DhPrivate::generate(group, &Fixed(0x11));
        let fixed = DhPrivate::from_secret(group, &vec![0x11; secret_len(group)]).unwrap();
        assert_eq!(drawn.public_value(), fixed.public_value());
    }
}

#[test]
fn modp_public_value_is_left_padded() {
    // 2^3 = 8: a public value far shorter than the prime, sent padded.
    let mut x = vec![0u8; 128];
    x[127] = 3;
    let private = DhPrivate::from_secret(DhGroup::Modp1024, &x).unwrap();
    let mut expected = vec![0u8; 128];
    expected[127] = 8;
    assert_eq!(private.public_value(), expected.as_slice());
    // 8^3 = 512, padded the same way.
    let shared = private.shared_secret(&expected).unwrap();
    assert_eq!(shared.len(), 128);
    assert_eq!(&shared[125..], &[0, 2, 0]);
    assert!(shared[..125].iter().all(|&b| b == 0));
}

#[test]
fn modp_peer_values_refused() {
    for group in [DhGroup::Modp1024, DhGroup::Modp1536, DhGroup::Modp2048] {
        let private = DhPrivate::generate(group, &OsRandom);
        let len = group.public_len();
        let prime = group.modp_prime().unwrap().to_vec();
        let mut p_minus_1 = prime.clone();
        p_minus_1[len - 1] -= 1;
        let mut one = vec![0u8; len];
        one[len - 1] = 1;
        let mut all_ones = vec![0xffu8; len];
        all_ones[0] = 0xff;
        for bad in [
            vec![0u8; len],
            one,
            p_minus_1.clone(),
            prime.clone(),
            all_ones,
        ] {
            assert_eq!(
                private.shared_secret(&bad),
                Err(DhError::Invalid { group }),
                "{group:?}"
            );
        }
        // p-2 and 2 are the edges that pass.
        let mut p_minus_2 = p_minus_1;
        p_minus_2[len - 1] -= 1;
        assert!(private.shared_secret(&p_minus_2).is_ok());
        let mut two = vec![0u8; len];
        two[len - 1] = 2;
        assert!(private.shared_secret(&two).is_ok());
        for wrong in [len - 1, len + 1, 0] {
            assert_eq!(
                private.shared_secret(&vec![2u8; wrong]),
                Err(DhError::Length {
                    group,
                    len: wrong,
                    expected: len
                })
            );
        }
    }
}

#[test]
fn ecp256_peer_values_refused() {
    let group = DhGroup::Ecp256;
    let private = DhPrivate::generate(group, &OsRandom);
    let peer = DhPrivate::generate(group, &OsRandom);
    // y changed: off the curve.
    let mut off_curve = peer.public_value().to_vec();
    off_curve[63] ^= 1;
    assert_eq!(
        private.shared_secret(&off_curve),
        Err(DhError::Invalid { group })
    );
    // All zeros: (0, 0) is not on the curve (and is how some encode the
    // identity).
    assert_eq!(
        private.shared_secret(&[0u8; 64]),
        Err(DhError::Invalid { group })
    );
    // x beyond the field's prime.
    assert_eq!(
        private.shared_secret(&[0xffu8; 64]),
        Err(DhError::Invalid { group })
    );
    // The compressed and SEC1-prefixed forms are not IKE's.
    let mut prefixed = vec![0x04];
    prefixed.extend_from_slice(peer.public_value());
    assert_eq!(
        private.shared_secret(&prefixed),
        Err(DhError::Length {
            group,
            len: 65,
            expected: 64
        })
    );
    assert_eq!(
        private.shared_secret(&peer.public_value()[..32]),
        Err(DhError::Length {
            group,
            len: 32,
            expected: 64
        })
    );
    assert!(private.shared_secret(peer.public_value()).is_ok());
}

#[test]
fn unusable_fixed_private_values_are_refused() {
    assert!(DhPrivate::from_secret(DhGroup::Ecp256, &[0u8; 32]).is_none());
    assert!(DhPrivate::from_secret(DhGroup::Ecp256, &[0xffu8; 32]).is_none());
    assert!(DhPrivate::from_secret(DhGroup::Modp1024, &[0u8; 128]).is_none());
    let mut one = [0u8; 128];
    one[127] = 1;
    assert!(DhPrivate::from_secret(DhGroup::Modp1024, &one).is_none());
    assert!(DhPrivate::from_secret(DhGroup::Modp1024, &[0x80u8; 128]).is_none());
    assert!(DhPrivate::from_secret(DhGroup::Modp1024, &[1u8; 127]).is_none());
}

#[test]
fn debug_redacts_the_secret() {
    let private = DhPrivate::generate(DhGroup::Ecp256, &OsRandom);
    let shown = format!("{private:?}");
    assert!(shown.contains("<redacted>"));
    assert!(!shown.contains("secret: ["));
}

#[test]
fn primes_are_the_rfcs() {
    // The top and bottom 64 bits of each are ones (RFC 2409 s6.2, RFC 3526).
    for group in [DhGroup::Modp1024, DhGroup::Modp1536, DhGroup::Modp2048] {
        let p = group.modp_prime().unwrap();
        assert_eq!(p.len(), group.public_len());
        assert_eq!(&p[..8], &[0xff; 8]);
        assert_eq!(&p[p.len() - 8..], &[0xff; 8]);
        // All three share pi's first digits after the leading ones.
        assert_eq!(&p[8..12], &[0xc9, 0x0f, 0xda, 0xa2]);
    }
}
