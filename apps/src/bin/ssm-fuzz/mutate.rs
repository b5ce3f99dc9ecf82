//! Mutations of an input: byte-level (bit flips, interesting integers at any offset, deletions,
//! duplications, splices with another input) and text-level (a number replaced by an extreme
//! one, a line deleted or repeated, a delimiter swapped), one to four stacked per new input.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Text numbers that readers tend to mishandle.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e308",
    "1e400",
    "-0",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999",
    "2147483648",
    "0.5",
    "",
    "1e-320",
    "65536",
];
const BYTES: &[u8] = &[0, 1, 0x7f, 0x80, 0xff, b'\n', b',', b'\t', b'"', b'{', b'}', b'[', b']', b':', b'\\'];
const WORDS: &[u64] = &[0, 1, 2, 0x7f, 0xff, 0x7fff, 0xffff, 0x7fff_ffff, 0xffff_ffff, 1 << 32, 1 << 40, u64::MAX];
const DELIMITERS: &[u8] = b",\t ;:\n\r|";

pub struct Mutator {
    rng: StdRng,
}

impl Mutator {
    pub fn new(seed: u64) -> Self {
        Self { rng: StdRng::seed_from_u64(seed) }
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { self.rng.random_range(0..n) }
    }

    /// `input` changed by one to four mutations (`other`: material for splices), at most
    /// `max_len` bytes.
    pub fn mutate(&mut self, input: &[u8], other: &[u8], max_len: usize) -> Vec<u8> {
        let mut v = input.to_vec();
        for _ in 0..1 + self.below(4) {
            self.once(&mut v, other);
        }
        v.truncate(max_len);
        v
    }

    fn once(&mut self, v: &mut Vec<u8>, other: &[u8]) {
        let at = self.below(v.len() + 1);
        let last = at.min(v.len().saturating_sub(1));
        match self.below(12) {
            0 if !v.is_empty() => v[last] ^= 1 << self.below(8),
            1 if !v.is_empty() => v[last] = self.rng.random(),
            2 if !v.is_empty() => v[last] = BYTES[self.below(BYTES.len())],
            3 => self.integer(v, at),
            4 => {
                let n = self.below(v.len() - at + 1).min(1 + self.below(64));
                v.drain(at..at + n);
            }
            5 if !v.is_empty() => {
                let from = self.below(v.len());
                let n = self.below(v.len() - from).min(256) + 1;
                let piece = v[from..from + n].to_vec();
                v.splice(at..at, piece);
            }
            6 => {
                let piece: Vec<u8> = (0..1 + self.below(16)).map(|_| self.rng.random()).collect();
                v.splice(at..at, piece);
            }
            7 => v.truncate(at),
            8 if !other.is_empty() => {
                let from = self.below(other.len());
                let n = self.below(other.len() - from).min(512) + 1;
                let end = (at + self.below(n + 1)).min(v.len());
                v.splice(at..end, other[from..from + n].iter().copied());
            }
            9 => self.number(v, at),
            10 => self.line(v, at),
            _ => self.delimiter(v, at),
        }
    }

    /// An interesting integer, 1, 2, 4 or 8 bytes, big- or little-endian, written over `at`.
    fn integer(&mut self, v: &mut Vec<u8>, at: usize) {
        let w = WORDS[self.below(WORDS.len())];
        let w = if self.below(4) == 0 { w.wrapping_sub(1) } else { w };
        let size = [1, 2, 4, 8][self.below(4)];
        let bytes = if self.below(2) == 0 { w.to_be_bytes() } else { w.to_le_bytes() };
        let bytes = if bytes[0] == 0 { &bytes[8 - size..] } else { &bytes[..size] };
        let end = (at + size).min(v.len());
        v.splice(at..end, bytes.iter().copied());
    }

    /// The number around `at` (or a new one) replaced by one of [`NUMBERS`].
    fn number(&mut self, v: &mut Vec<u8>, at: usize) {
        let num = |b: u8| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'e' || b == b'+';
        let start = v[..at].iter().rposition(|&b| !num(b)).map_or(0, |i| i + 1);
        let end = v[at..].iter().position(|&b| !num(b)).map_or(v.len(), |i| at + i);
        let pick = NUMBERS[self.below(NUMBERS.len())].bytes();
        v.splice(start..end, pick);
    }

    /// The line holding `at` deleted, repeated, or moved to the end.
    fn line(&mut self, v: &mut Vec<u8>, at: usize) {
        let start = v[..at].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let end = v[at..].iter().position(|&b| b == b'\n').map_or(v.len(), |i| at + i + 1);
        let line: Vec<u8> = v[start..end].to_vec();
        match self.below(3) {
            0 => {
                v.drain(start..end);
            }
            1 => {
                let times = [1, 2, 16, 200][self.below(4)];
                for _ in 0..times {
                    v.splice(end..end, line.iter().copied());
                }
            }
            _ => {
                v.drain(start..end);
                v.extend(line);
            }
        }
    }

    /// A delimiter near `at` swapped for another.
    fn delimiter(&mut self, v: &mut [u8], at: usize) {
        if let Some(i) = v[at..].iter().position(|b| DELIMITERS.contains(b)) {
            v[at + i] = DELIMITERS[self.below(DELIMITERS.len())];
        }
    }
}
