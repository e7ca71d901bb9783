//! The job's working_dir package: a zip of the wrapper and the gyre binary, named by its
//! content as Ray names the packages it uploads (`_ray_pkg_HASH.zip`), so a cluster that has it
//! is not sent it again.
//!
//! Written here rather than with a zip crate: two files, deflated, in the plain (not ZIP64)
//! format, is the whole of what we need, on the flate2 and crc32fast the build has already.

use gyre_app::AppError;
use sha2::{Digest, Sha256};
use std::io::Write;

/// The package's name for these contents.
pub(crate) fn name(wrapper: &[u8], binary: Option<&[u8]>) -> String {
    let mut h = Sha256::new();
    h.update(b"gyre-ray-package-v1\0");
    h.update((wrapper.len() as u64).to_le_bytes());
    h.update(wrapper);
    if let Some(b) = binary {
        h.update(b);
    }
    let digest = h.finalize();
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("_ray_pkg_gyre_{hex}.zip")
}

/// A zip of `files` (name, bytes, Unix mode), each deflated.
pub(crate) fn zip(files: &[(&str, &[u8], u32)]) -> Result<Vec<u8>, AppError> {
    let too_big = || AppError::invalid("the working_dir package would pass 4 GiB (no ZIP64 here)");
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data, mode) in files {
        if data.is_empty() && *name == "gyre" {
            continue;
        }
        let crc = crc32fast::hash(data);
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data)
            .map_err(|e| AppError::invalid(format!("deflating {name}: {e}")))?;
        let packed = enc
            .finish()
            .map_err(|e| AppError::invalid(format!("deflating {name}: {e}")))?;
        let (csize, usize_) = (
            u32::try_from(packed.len()).map_err(|_| too_big())?,
            u32::try_from(data.len()).map_err(|_| too_big())?,
        );
        let offset = u32::try_from(out.len()).map_err(|_| too_big())?;
        // Local file header.
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend(20u16.to_le_bytes()); // version needed: 2.0 (deflate)
        out.extend(0u16.to_le_bytes()); // flags
        out.extend(8u16.to_le_bytes()); // method: deflate
        out.extend(0u16.to_le_bytes()); // time
        out.extend(0x21u16.to_le_bytes()); // date: 1980-01-01
        out.extend(crc.to_le_bytes());
        out.extend(csize.to_le_bytes());
        out.extend(usize_.to_le_bytes());
        out.extend((name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes()); // extra length
        out.extend(name.as_bytes());
        out.extend(&packed);
        // Its central directory entry: made on Unix, so the external attributes carry the mode.
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(((3u16 << 8) | 20).to_le_bytes());
        central.extend(20u16.to_le_bytes());
        central.extend(0u16.to_le_bytes());
        central.extend(8u16.to_le_bytes());
        central.extend(0u16.to_le_bytes());
        central.extend(0x21u16.to_le_bytes());
        central.extend(crc.to_le_bytes());
        central.extend(csize.to_le_bytes());
        central.extend(usize_.to_le_bytes());
        central.extend((name.len() as u16).to_le_bytes());
        central.extend(0u16.to_le_bytes()); // extra
        central.extend(0u16.to_le_bytes()); // comment
        central.extend(0u16.to_le_bytes()); // disk
        central.extend(0u16.to_le_bytes()); // internal attributes
        central.extend(((0o100000 | mode) << 16).to_le_bytes());
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let entries = files
        .iter()
        .filter(|(n, d, _)| !(d.is_empty() && *n == "gyre"))
        .count() as u16;
    let cd_offset = u32::try_from(out.len()).map_err(|_| too_big())?;
    let cd_size = central.len() as u32;
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(entries.to_le_bytes());
    out.extend(entries.to_le_bytes());
    out.extend(cd_size.to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contents() {
        let a = name(b"wrapper", Some(b"binary"));
        assert!(a.starts_with("_ray_pkg_") && a.ends_with(".zip"), "{a}");
        assert_eq!(a, name(b"wrapper", Some(b"binary")));
        assert_ne!(a, name(b"wrapper", Some(b"binarz")));
        assert_ne!(a, name(b"wrapper", None));
    }

    #[test]
    fn a_zip_python_reads_back() {
        // Python's zipfile is what Ray unpacks packages with: read ours back with it when
        // there is a python3 here (the Ray tests need one anyway).
        let big: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let z = zip(&[("a.txt", b"hello", 0o644), ("gyre", &big, 0o755)]).unwrap();
        let dir = std::env::temp_dir().join(format!("gyre-zip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.zip");
        std::fs::write(&path, &z).unwrap();
        let script = "import sys,zipfile,hashlib\n\
                      z=zipfile.ZipFile(sys.argv[1])\n\
                      assert z.testzip() is None\n\
                      print(z.read('a.txt').decode(), hashlib.sha256(z.read('gyre')).hexdigest(), oct(z.getinfo('gyre').external_attr>>16))";
        let python = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(&path)
            .output();
        if gyre_testkit::require("python3, which reads zips as Ray does", python.is_ok()) {
            let out = python.unwrap();
            {
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let text = String::from_utf8(out.stdout).unwrap();
                let want: String = Sha256::digest(&big)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                assert_eq!(text.trim(), format!("hello {want} 0o100755"));
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
