//! Bytes as hexadecimal text and back: request signatures, Redis ACL digests, the
//! journal's password digest, random names, and the stored hashes MySQL statements carry.
//! One spelling for all of them, so a digest written in one place compares equal to the
//! same digest written in another.

const LOWER: &[u8; 16] = b"0123456789abcdef";
const UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Two lowercase digits per byte (`00ff`).
pub fn lower(bytes: &[u8]) -> String {
    encode(bytes, LOWER)
}

/// Two uppercase digits per byte (`00FF`), as MySQL prints hashes.
pub fn upper(bytes: &[u8]) -> String {
    encode(bytes, UPPER)
}

fn encode(bytes: &[u8], digits: &[u8; 16]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(digits[usize::from(b >> 4)]));
        out.push(char::from(digits[usize::from(b & 0x0f)]));
    }
    out
}

/// The bytes of an even number of hex digits in either case; `None` for anything else.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .filter(|pair| pair.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_both_cases() {
        assert_eq!(lower(b"\x00\x7f\xff"), "007fff");
        assert_eq!(upper(b"\x00\x7f\xff"), "007FFF");
        assert_eq!(decode("007fFF").unwrap(), b"\x00\x7f\xff");
        assert_eq!(decode("").unwrap(), b"");
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&lower(&all)).unwrap(), all);
        assert_eq!(decode(&upper(&all)).unwrap(), all);
    }

    #[test]
    fn anything_but_pairs_of_digits_is_refused() {
        for bad in ["0", "zz", "+1", "-1", "0x", "é0", "1 "] {
            assert!(decode(bad).is_none(), "{bad:?}");
        }
    }
}
