//! Sharded ingest: `--shard I/N` makes a worker read only the objects of
//! shard `I` of `N` (0-based, as a Kubernetes Indexed Job numbers its pods).
//!
//! An object's shard is a stable hash of its name under the source (the key
//! below the S3 prefix, or the path below the directory): for CloudFront,
//! `<distribution>.YYYY-MM-DD-HH.<id>.gz` and whatever folders lead to it.
//! The hash is the first eight bytes of the name's SHA-256, read as a
//! big-endian integer, modulo `N`: any tool reproduces it
//! (`python3 -c "import hashlib,sys; print(int.from_bytes(hashlib.sha256(sys.argv[1].encode()).digest()[:8],'big') % 4)" NAME`),
//! and it does not change between releases, hosts or source mount points.
//!
//! Shards only divide work: exactness does not depend on them. Two workers
//! that read the same object (overlapping shards while `N` is changed) merge
//! it as any re-read is merged: the ingested record and request-id
//! de-duplication keep it counted once, and the lake's commits let workers
//! write the same hours at once.

use sha2::{Digest, Sha256};
use std::fmt;

/// Shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// `I/N` with `0 ≤ I < N`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!("--shard {text:?}: give I/N, the worker's shard I of N (0 ≤ I < N), e.g. 0/4")
        };
        let (index, count) = text.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = index.trim().parse().map_err(|_| bad())?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }

    pub(crate) fn index(self) -> u32 {
        self.index
    }

    pub(crate) fn count(self) -> u32 {
        self.count
    }

    /// The shard, of `count`, that an object named `name` belongs to.
    pub(crate) fn of(name: &str, count: u32) -> u32 {
        let digest = Sha256::digest(name.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(first) % u64::from(count)) as u32
    }

    /// Whether an object named `name` under the source is this shard's.
    pub(crate) fn holds(self, name: &str) -> bool {
        Self::of(name, self.count) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_index_of_count() {
        let shard = Shard::parse("2/4").unwrap();
        assert_eq!((shard.index(), shard.count()), (2, 4));
        assert_eq!(shard.to_string(), "2/4");
        assert_eq!(Shard::parse(" 0 / 1 ").unwrap().to_string(), "0/1");
        for bad in ["4/4", "1/0", "-1/4", "1", "a/4", "1/4/2", ""] {
            let e = Shard::parse(bad).unwrap_err();
            assert!(e.contains("give I/N"), "{bad}: {e}");
        }
    }

    /// The shards of real CloudFront object names, computed with Python's
    /// hashlib (the command in the module's documentation), not with this code:
    /// the assignment is part of the interface and must never change.
    #[test]
    fn assignment_is_the_documented_hash() {
        let cases = [
            ("E2K2ZFYFWPQQ12.2025-11-03-14.a1b2c3d4.gz", 4, 1),
            ("E2K2ZFYFWPQQ12.2025-11-03-14.a1b2c3d4.gz", 7, 0),
            ("logs/E1ABCDEF.2024-02-29-00.0f0e0d0c.gz", 4, 3),
            ("EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz", 4, 1),
            ("EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz", 3, 2),
        ];
        for (name, count, shard) in cases {
            assert_eq!(Shard::of(name, count), shard, "{name} of {count}");
        }
    }

    /// Every name lands in exactly one shard, and the shards are about even.
    #[test]
    fn shards_partition_names() {
        let shards: Vec<Shard> = (0..4)
            .map(|i| Shard::parse(&format!("{i}/4")).unwrap())
            .collect();
        let mut sizes = [0u32; 4];
        for n in 0..4000 {
            let name = format!("E2K2ZFYFWPQQ12.2025-11-03-{:02}.{n:08x}.gz", n % 24);
            let holders: Vec<u32> = shards
                .iter()
                .filter(|s| s.holds(&name))
                .map(|s| s.index())
                .collect();
            assert_eq!(holders.len(), 1, "{name}");
            sizes[holders[0] as usize] += 1;
        }
        assert!(sizes.iter().all(|&s| (850..1150).contains(&s)), "{sizes:?}");
    }
}
