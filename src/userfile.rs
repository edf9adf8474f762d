//! Reading a file a user named, or one of the PKI's files, without trusting what it is: only
//! a regular file is read (a FIFO, device or socket could block or never end: `/dev/zero`), and
//! never more than a stated number of bytes.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The most a certificate, key or daemon.json file of a PKI may hold: far above any real one
/// (an RSA-8192 key is under 7 KiB, a bundle of a hundred certificates under 200 KiB).
pub const MAX_PKI_FILE: u64 = 1024 * 1024;

/// Why a file cannot be read: the message names the path and what to do.
#[derive(Debug)]
pub struct ReadError(pub String);

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a non-regular file is, for the message.
pub fn kind(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a folder"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading when it is a regular file. O_NONBLOCK keeps the open of a FIFO
/// from waiting for a writer; it changes nothing for a regular file.
pub fn open_regular(path: &Path) -> Result<(File, std::fs::Metadata), ReadError> {
    open_checked(path, false)
}

/// Opens `path` as [`open_regular`] does, but also takes an anonymous pipe handed over by the
/// shell (`--ca-passphrase-file <(pass show ca)`, or `/dev/stdin` at the end of a pipeline),
/// read blocking as the writer produces it. A named FIFO on disk is still refused: nothing says
/// a writer will ever come. What decides is the opened file itself (it lives on pipefs), not
/// its name.
pub fn open_regular_or_pipe(path: &Path) -> Result<(File, std::fs::Metadata), ReadError> {
    open_checked(path, true)
}

/// pipefs' magic number (linux/magic.h): the file system of anonymous pipes.
const PIPEFS_MAGIC: u64 = 0x5049_5045;

fn open_checked(path: &Path, pipe: bool) -> Result<(File, std::fs::Metadata), ReadError> {
    let cannot =
        |e: std::io::Error| ReadError(format!("cannot read {}: {e}", crate::escape::path(path)));
    let file = OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC).bits() as i32)
        .open(path)
        .map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if meta.is_file() {
        return Ok((file, meta));
    }
    let anonymous_pipe = pipe
        && meta.file_type().is_fifo()
        && rustix::fs::fstatfs(&file).is_ok_and(|fs| fs.f_type as u64 == PIPEFS_MAGIC);
    if anonymous_pipe {
        // Read as the writer produces it: wait for data instead of failing with EAGAIN.
        let flags = rustix::fs::fcntl_getfl(&file).map_err(|e| cannot(e.into()))?;
        rustix::fs::fcntl_setfl(&file, flags - rustix::fs::OFlags::NONBLOCK)
            .map_err(|e| cannot(e.into()))?;
        return Ok((file, meta));
    }
    Err(ReadError(format!(
        "{} is {}, not a regular file: give the path of the file itself",
        path.display(),
        kind(meta.file_type())
    )))
}

/// Reads all of a regular file of at most `max` bytes.
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let too_big = |size: u64| {
        ReadError(format!(
            "{} is {size} bytes, more than the {max} bytes such a file can hold: is it the right file?",
            path.display()
        ))
    };
    let (file, meta) = open_regular(path)?;
    let len = meta.len();
    if len > max {
        return Err(too_big(len));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // The file may grow while it is read: never read past max + 1.
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError(format!("cannot read {}: {e}", crate::escape::path(path))))?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Reads at most the first `max` bytes of `file` (opened by [`open_regular`]) into `buf`
/// (cleared first, its capacity reserved beforehand so that a secret is never copied by a
/// reallocation).
pub fn read_start(
    file: &File,
    path: &Path,
    max: usize,
    buf: &mut Vec<u8>,
) -> Result<(), ReadError> {
    buf.clear();
    // Room for all of it (and read_to_end's end-of-file probe): no reallocation.
    buf.reserve_exact(max + 64);
    file.take(max as u64)
        .read_to_end(buf)
        .map_err(|e| ReadError(format!("cannot read {}: {e}", crate::escape::path(path))))?;
    Ok(())
}

/// The user this process runs as: the owner of /proc/self (Linux), without `unsafe` libc.
pub fn current_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_folders_are_refused_at_once() {
        let work = tempfile::tempdir().unwrap();
        let fifo = work.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        for (path, what) in [
            (Path::new("/dev/zero"), "a character device"),
            (fifo.as_path(), "a FIFO"),
            (work.path(), "a folder"),
        ] {
            let err = read_regular(path, 10).unwrap_err().to_string();
            assert!(
                err.contains(what) && err.contains("not a regular file"),
                "{err}"
            );
            assert!(open_regular(path).is_err());
        }
    }

    #[test]
    fn the_current_user_is_known() {
        use std::os::unix::fs::MetadataExt;
        let work = tempfile::tempdir().unwrap();
        let mine = std::fs::metadata(work.path()).unwrap().uid();
        assert_eq!(current_uid(), Some(mine));
    }

    #[test]
    fn sizes_are_bounded() {
        let work = tempfile::tempdir().unwrap();
        let file = work.path().join("f");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(read_regular(&file, 10).unwrap(), b"0123456789");
        let err = read_regular(&file, 9).unwrap_err().to_string();
        assert!(err.contains("10 bytes, more than the 9"), "{err}");
        let mut buf = Vec::new();
        let (opened, _) = open_regular(&file).unwrap();
        read_start(&opened, &file, 4, &mut buf).unwrap();
        assert_eq!(buf, b"0123");
        let (opened, _) = open_regular(&file).unwrap();
        read_start(&opened, &file, 40, &mut buf).unwrap();
        assert_eq!(buf, b"0123456789");
    }
}
