//! Random ids and random bytes: the one place the service draws randomness.
//!
//! Ids are a prefix that names the kind (`con`, `key`, `evt`, …), an underscore and 96
//! random bits in hex, from the operating system's random source. Hex text, here and
//! elsewhere, is the `hex` crate's.

/// A random id with a prefix: `con_3f9a…` (24 hex digits).
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}_{}", hex::encode(random_bytes::<12>()))
}

/// `N` bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_two_lower_case_digits_a_byte() {
        assert_eq!(hex::encode([0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex::encode([]), "");
    }

    #[test]
    fn ids_have_their_prefix_and_differ() {
        let (a, b) = (random_id("con"), random_id("con"));
        assert!(a.starts_with("con_") && a.len() == 4 + 24, "{a}");
        assert_ne!(a, b);
    }
}
