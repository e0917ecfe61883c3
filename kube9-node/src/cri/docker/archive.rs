//! The tar archives the engine extracts into a container (`PUT /containers/{id}/archive`),
//! built in memory: what is written into a configMap or secret volume never touches the
//! node's disk on its way there.
//!
//! Every directory a path needs gets its own entry (mode `0755`) before the file, and every
//! entry is owned by root (the engine makes extracted files root's, as `docker cp` does).

use std::collections::HashSet;
use std::path::{Component, Path};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cri::types::FileToWrite;

/// Mode of the directories made for files in subdirectories (`db/` of `db/password`).
pub const DIR_MODE: u32 = 0o755;

/// `files` as a tar archive to extract into a volume's root. Refuses a path that is
/// absolute, empty or climbs out with `..`, a path given twice, and a path that is both a file
/// and a directory (`a` and `a/b`).
pub fn files_tar(files: &[FileToWrite]) -> Result<Vec<u8>, String> {
    let mtime = (SystemTime::now().duration_since(UNIX_EPOCH)).map_or(0, |d| d.as_secs());
    let mut tar = tar::Builder::new(Vec::new());
    let mut dirs = HashSet::new();
    let mut written = HashSet::new();
    let failed = |e: std::io::Error| format!("failed to write the archive: {e}");
    for file in files {
        let parts = parts(&file.path)?;
        for depth in 1..parts.len() {
            let dir = parts[..depth].join("/");
            if written.contains(&dir) {
                return Err(format!("{dir:?} is a file and a directory"));
            }
            if dirs.insert(dir.clone()) {
                let mut header = header(tar::EntryType::Directory, 0, DIR_MODE, mtime);
                tar.append_data(&mut header, format!("{dir}/"), std::io::empty())
                    .map_err(failed)?;
            }
        }
        let path = parts.join("/");
        if dirs.contains(&path) {
            return Err(format!("{path:?} is a file and a directory"));
        }
        if !written.insert(path.clone()) {
            return Err(format!("{path:?} is given twice"));
        }
        let size = file.content.len() as u64;
        let mut header = header(tar::EntryType::Regular, size, file.mode & 0o777, mtime);
        tar.append_data(&mut header, &path, file.content.as_slice())
            .map_err(failed)?;
    }
    tar.into_inner().map_err(failed)
}

/// The normal components of a relative path (`./a//b` is `a`, `b`).
fn parts(path: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(part) => parts.push(part.to_str().expect("from a str")),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("file path {path:?} must be a relative path"))
            }
            Component::ParentDir => {
                return Err(format!("file path {path:?} must not contain '..'"))
            }
        }
    }
    if parts.is_empty() {
        return Err(format!("file path {path:?} names no file"));
    }
    Ok(parts)
}

fn header(kind: tar::EntryType, size: u64, mode: u32, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &str, mode: u32) -> FileToWrite {
        FileToWrite {
            path: path.into(),
            content: content.as_bytes().to_vec(),
            mode,
        }
    }

    /// Every entry: (path, kind, mode, content).
    fn entries(tar: &[u8]) -> Vec<(String, tar::EntryType, u32, String)> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut content = String::new();
                std::io::Read::read_to_string(&mut e, &mut content).unwrap();
                let header = e.header();
                assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
                (
                    e.path().unwrap().display().to_string(),
                    header.entry_type(),
                    header.mode().unwrap(),
                    content,
                )
            })
            .collect()
    }

    #[test]
    fn files_in_subdirectories_get_their_directories_first_and_keep_their_modes() {
        let files = [
            file("username", "admin", 0o644),
            file("db/password", "s3cr3t", 0o400),
            file("./db//host", "db.local", 0o640),
            file("a/b/c", "deep", 0o600),
        ];
        let tar = files_tar(&files).unwrap();
        let dir = tar::EntryType::Directory;
        let reg = tar::EntryType::Regular;
        let e = |path: &str, kind, mode, content: &str| {
            (path.to_string(), kind, mode, content.to_string())
        };
        assert_eq!(
            entries(&tar),
            [
                e("username", reg, 0o644, "admin"),
                e("db/", dir, 0o755, ""),
                e("db/password", reg, 0o400, "s3cr3t"),
                e("db/host", reg, 0o640, "db.local"),
                e("a/", dir, 0o755, ""),
                e("a/b/", dir, 0o755, ""),
                e("a/b/c", reg, 0o600, "deep"),
            ]
        );
    }

    #[test]
    fn no_files_make_an_empty_archive() {
        assert!(entries(&files_tar(&[]).unwrap()).is_empty());
    }

    #[test]
    fn a_long_path_survives() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(120));
        let tar = files_tar(&[file(&long, "x", 0o644)]).unwrap();
        assert_eq!(entries(&tar)[1].0, long);
    }

    #[test]
    fn paths_that_leave_the_volume_or_collide_are_refused() {
        for bad in ["/etc/passwd", "../x", "a/../../x", "", "."] {
            let err = files_tar(&[file(bad, "x", 0o644)]).unwrap_err();
            assert!(err.contains("file path"), "{bad:?}: {err}");
        }
        let collide = |a: &str, b: &str| files_tar(&[file(a, "", 0o644), file(b, "", 0o644)]);
        assert!(collide("a", "a/b")
            .unwrap_err()
            .contains("file and a directory"));
        assert!(collide("a/b", "a")
            .unwrap_err()
            .contains("file and a directory"));
        assert!(collide("a", "./a").unwrap_err().contains("given twice"));
    }
}
