//! A folder as one input: `SSMFUZZ\n` then, for each file, `#@file <relative path>\n<bytes>`,
//! the sections joined by `\n`. Mutating the bundle mutates file contents, names and the
//! folder's make-up (a section lost to a mutation is a missing file).

use anyhow::{Context, Result};
use std::path::{Component, Path, PathBuf};

const HEADER: &[u8] = b"SSMFUZZ\n";
const MARK: &[u8] = b"#@file ";

/// Every file under `dir` (sorted by path) as a bundle.
pub fn pack(dir: &Path) -> Result<Vec<u8>> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut out = HEADER.to_vec();
    for (i, rel) in files.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(MARK);
        out.extend_from_slice(rel.to_string_lossy().as_bytes());
        out.push(b'\n');
        let p = dir.join(rel);
        out.extend(std::fs::read(&p).with_context(|| format!("{}", p.display()))?);
    }
    Ok(out)
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            collect(root, &p, out)?;
        } else {
            out.push(p.strip_prefix(root)?.to_path_buf());
        }
    }
    Ok(())
}

/// Writes the bundle's files under `dir` (which must exist and be empty). Sections whose path
/// is not a plain relative one (no `..`, at most 4 parts) are dropped.
pub fn unpack(bytes: &[u8], dir: &Path) -> std::io::Result<()> {
    let Some(body) = bytes.strip_prefix(HEADER) else { return Ok(()) };
    for section in split(body) {
        let Some(rest) = section.strip_prefix(MARK) else { continue };
        let nl = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let Some(rel) = safe_path(&rest[..nl]) else { continue };
        let path = dir.join(rel);
        if let Some(parent) = path.parent()
            && std::fs::create_dir_all(parent).is_err()
        {
            continue; // a file already stands where this folder would be
        }
        if path.is_dir() {
            continue;
        }
        std::fs::write(&path, rest.get(nl + 1..).unwrap_or_default())?;
    }
    Ok(())
}

/// The sections: `body` cut before each `\n#@file `.
fn split(body: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 + MARK.len() <= body.len() {
        if body[i] == b'\n' && body[i + 1..].starts_with(MARK) {
            out.push(&body[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    out.push(&body[start..]);
    out
}

fn safe_path(raw: &[u8]) -> Option<PathBuf> {
    let s = std::str::from_utf8(raw).ok()?;
    let p = Path::new(s);
    let parts = p.components().count();
    let plain = p.components().all(|c| matches!(c, Component::Normal(_)));
    (plain && (1..=4).contains(&parts)).then(|| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_then_unpack_gives_the_same_files() {
        let base = std::env::temp_dir().join(format!("ssm-fuzz-bundle-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(a.join("sub")).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("x.csv"), b"1,2\n3,4\n").unwrap();
        std::fs::write(a.join("sub/y.bin"), [0u8, 10, 255, 10]).unwrap();
        std::fs::write(a.join("empty"), b"").unwrap();
        unpack(&pack(&a).unwrap(), &b).unwrap();
        for f in ["x.csv", "sub/y.bin", "empty"] {
            assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f}");
        }
        assert!(safe_path(b"../etc/passwd").is_none() && safe_path(b"/abs").is_none());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
