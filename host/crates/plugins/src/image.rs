//! A plugin library's bytes, read once, in the form they are loaded in.
//!
//! On Linux the file is copied by the kernel (`sendfile`) into an anonymous memory file (`memfd_create`), which
//! is then sealed against every change (`F_SEAL_WRITE|F_SEAL_GROW|F_SEAL_SHRINK|F_SEAL_SEAL`) and mapped read-only.
//! Everything that checks the library (its SHA-256, the dependency check) reads that mapping, and the loader
//! opens the same sealed file (`/proc/self/fd/<fd>`): the bytes checked are the bytes loaded, with no copy in
//! between, and since the seal comes before the first check not even a write through `/proc/<pid>/fd` by another
//! process of the same user can slip in between check and load. Compared with reading the file into memory and
//! writing it into a memfd afterwards, this saves one user-space copy of the library and the page faults of an
//! allocation of its size.
//!
//! Elsewhere (not Linux, or where memfd is unavailable) the bytes are read into memory and
//! [`crate::load`] writes them to a private file before loading, as before.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

/// The bytes of a plugin library. Cheap to clone (shared).
#[derive(Clone)]
pub struct LibraryBytes {
    inner: Arc<Inner>,
}

enum Inner {
    Heap(Vec<u8>),
    #[cfg(target_os = "linux")]
    Sealed(sealed::Sealed),
}

impl LibraryBytes {
    /// Reads the library at `path`: into a sealed memfd where possible, into memory otherwise.
    pub fn read(path: &Path) -> std::io::Result<LibraryBytes> {
        #[cfg(target_os = "linux")]
        {
            let file = File::open(path)?;
            if let Ok(Some(s)) = sealed::Sealed::copy_from(&file, path) {
                return Ok(LibraryBytes {
                    inner: Arc::new(Inner::Sealed(s)),
                });
            }
        }
        Ok(LibraryBytes::from_vec(std::fs::read(path)?))
    }

    /// Bytes already in memory (tests, other platforms).
    pub fn from_vec(bytes: Vec<u8>) -> LibraryBytes {
        LibraryBytes {
            inner: Arc::new(Inner::Heap(bytes)),
        }
    }

    /// The sealed file holding exactly these bytes, when they live in one.
    pub fn sealed_file(&self) -> Option<&File> {
        match &*self.inner {
            Inner::Heap(_) => None,
            #[cfg(target_os = "linux")]
            Inner::Sealed(s) => Some(&s.file),
        }
    }
}

impl std::ops::Deref for LibraryBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &*self.inner {
            Inner::Heap(v) => v,
            #[cfg(target_os = "linux")]
            Inner::Sealed(s) => s.bytes(),
        }
    }
}

impl std::fmt::Debug for LibraryBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.sealed_file().is_some() {
            "sealed memfd"
        } else {
            "memory"
        };
        write!(f, "LibraryBytes({} bytes, {kind})", self.len())
    }
}

/// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC)`, without `MFD_EXEC` on kernels that predate
/// it (before 6.3).
#[cfg(target_os = "linux")]
pub(crate) fn memfd(name: &str) -> std::io::Result<File> {
    use std::os::fd::FromRawFd as _;
    const MFD_EXEC: libc::c_uint = 0x0010;
    let cname =
        std::ffi::CString::new(format!("osiris-plugin-{name}")).map_err(std::io::Error::other)?;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: plain syscalls on a NUL-terminated name; the returned descriptor is owned by the File below.
    let mut fd = unsafe { libc::memfd_create(cname.as_ptr(), flags | MFD_EXEC) };
    if fd < 0 {
        // SAFETY: as above: a NUL-terminated name that outlives the call; the descriptor is owned below.
        fd = unsafe { libc::memfd_create(cname.as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Seals `file` against every change: no write, no growing, no shrinking, no further seal changes.
#[cfg(target_os = "linux")]
pub(crate) fn seal(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on a descriptor we own.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(target_os = "linux")]
mod sealed {
    use std::fs::File;
    use std::os::fd::AsRawFd as _;
    use std::path::Path;

    /// A sealed memfd and a read-only mapping of all of it.
    pub struct Sealed {
        pub file: File,
        ptr: *const u8,
        len: usize,
    }

    // SAFETY: the mapping is read-only and its file sealed against writes and size changes, so the bytes never
    // change while it exists; sharing the pointer between threads is sharing an immutable `&[u8]`.
    unsafe impl Send for Sealed {}
    // SAFETY: as above (immutable bytes).
    unsafe impl Sync for Sealed {}

    impl Sealed {
        /// Copies `src` into a new memfd in the kernel, seals it and maps it. `Ok(None)` for an empty file (no
        /// mapping of length 0 exists; the caller reads it the ordinary way).
        pub fn copy_from(src: &File, path: &Path) -> std::io::Result<Option<Sealed>> {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let file = super::memfd(&name)?;
            let want = src.metadata()?.len();
            let mut copied: u64 = 0;
            loop {
                // Until the end of the file, whatever size it had when we looked.
                let chunk = (want.saturating_sub(copied)).clamp(1 << 20, 1 << 30) as usize;
                // SAFETY: two descriptors we hold open; a null offset copies from and advances the source's
                // own file position.
                let n = unsafe {
                    libc::sendfile(
                        file.as_raw_fd(),
                        src.as_raw_fd(),
                        std::ptr::null_mut(),
                        chunk,
                    )
                };
                if n < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if n == 0 {
                    break;
                }
                copied += n as u64;
            }
            super::seal(&file)?;
            // The length of the sealed file, not of what was asked for: that is what is mapped and loaded.
            let len = usize::try_from(file.metadata()?.len()).map_err(std::io::Error::other)?;
            if len == 0 {
                return Ok(None);
            }
            // SAFETY: a fresh read-only shared mapping of `len` bytes of a file we own, sealed so that it can no
            // longer shrink (which would make parts of the mapping fault); unmapped in `Drop`.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ,
                    libc::MAP_SHARED | libc::MAP_POPULATE,
                    file.as_raw_fd(),
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error());
            }
            Ok(Some(Sealed {
                file,
                ptr: ptr.cast::<u8>().cast_const(),
                len,
            }))
        }

        pub fn bytes(&self) -> &[u8] {
            // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives, and they never change (sealed).
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }

    impl Drop for Sealed {
        fn drop(&mut self) {
            // SAFETY: the mapping made in `copy_from`, unmapped once; no slice of it outlives `self`.
            unsafe {
                libc::munmap(self.ptr.cast_mut().cast(), self.len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_gives_the_file_bytes_and_on_linux_a_sealed_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libx.so");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let lib = LibraryBytes::read(&path).unwrap();
        assert_eq!(&lib[..], &data[..]);
        #[cfg(target_os = "linux")]
        {
            use std::io::Write as _;
            use std::os::fd::AsRawFd as _;
            let sealed = lib.sealed_file().expect("a sealed memfd on Linux");
            // Changing the file on disk afterwards changes nothing that was read.
            std::fs::write(&path, b"changed").unwrap();
            assert_eq!(&lib[..], &data[..]);
            // Nobody can write the sealed copy, not even through /proc/self/fd.
            let proc = format!("/proc/self/fd/{}", sealed.as_raw_fd());
            if let Ok(mut w) = std::fs::OpenOptions::new().write(true).open(&proc) {
                assert!(w.write_all(b"x").is_err());
            }
            assert_eq!(std::fs::read(&proc).unwrap(), data);
        }
    }

    #[test]
    fn empty_files_are_read_into_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.so");
        std::fs::write(&path, b"").unwrap();
        let lib = LibraryBytes::read(&path).unwrap();
        assert!(lib.is_empty());
        assert!(lib.sealed_file().is_none());
    }

    /// Where the fixed cost of checking and loading a plugin library goes, phase by phase, against the way it was
    /// done before (read into memory, hash, full ELF parse, write into a memfd). Not a test: run with
    /// `OSIRIS_LOAD_COST_LIBRARY=path/to/lib.so cargo test --release -p osiris-plugins --lib -- --ignored
    /// --nocapture load_cost` (docs/performance.md). The library's constructors run (`dlopen`): use a library you
    /// trust.
    #[test]
    #[ignore = "a benchmark: needs OSIRIS_LOAD_COST_LIBRARY"]
    #[cfg(target_os = "linux")]
    fn load_cost() {
        use std::time::Instant;
        let Some(path) = std::env::var_os("OSIRIS_LOAD_COST_LIBRARY") else {
            panic!("set OSIRIS_LOAD_COST_LIBRARY to a plugin library");
        };
        let path = std::path::PathBuf::from(path);
        let runs = 15;
        let mut t = std::collections::BTreeMap::<&str, Vec<f64>>::new();
        let mut time = |name: &'static str, f: &mut dyn FnMut()| {
            let start = Instant::now();
            f();
            t.entry(name)
                .or_default()
                .push(start.elapsed().as_secs_f64() * 1000.0);
        };
        for _ in 0..runs {
            // Before: into memory, hash, full parse, then a copy into a sealed memfd.
            let mut bytes = Vec::new();
            time("before: read into memory", &mut || {
                bytes = std::fs::read(&path).unwrap()
            });
            time("before: sha256", &mut || {
                std::hint::black_box(crate::package::sha256_hex(&bytes));
            });
            time("before: ELF parse (goblin Elf::parse)", &mut || {
                std::hint::black_box(goblin::elf::Elf::parse(&bytes).unwrap().libraries.len());
            });
            time("before: write into a sealed memfd", &mut || {
                use std::io::Write as _;
                let mut f = memfd("bench").unwrap();
                f.write_all(&bytes).unwrap();
                seal(&f).unwrap();
            });
            drop(bytes);
            // Now: the kernel copies into the memfd, which is sealed and mapped; the checks read the mapping.
            let mut lib = None;
            time("now: sendfile into a sealed memfd, map", &mut || {
                lib = Some(LibraryBytes::read(&path).unwrap())
            });
            let lib = lib.unwrap();
            assert!(lib.sealed_file().is_some());
            time("now: sha256", &mut || {
                std::hint::black_box(crate::package::sha256_hex(&lib));
            });
            time("now: dynamic section only", &mut || {
                std::hint::black_box(crate::deps::check(&lib, "bench 1", &path).ok());
            });
        }
        // dlopen once (a library is never unloaded): RTLD_NOW binds every symbol of it and of its dependencies.
        {
            use std::os::fd::AsRawFd as _;
            let lib = LibraryBytes::read(&path).unwrap();
            let fd = lib.sealed_file().unwrap().as_raw_fd();
            let p = std::ffi::CString::new(format!("/proc/self/fd/{fd}")).unwrap();
            time("dlopen (RTLD_NOW | RTLD_LOCAL), once", &mut || {
                // SAFETY: the benchmark's own library, named by the caller; loading it is the point.
                let h = unsafe { libc::dlopen(p.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
                assert!(!h.is_null());
            });
        }
        use std::io::Write as _;
        let len = std::fs::metadata(&path).unwrap().len();
        let mut out = std::io::stderr().lock();
        let _ = writeln!(
            out,
            "{} ({:.1} MB), {runs} runs: median / min ms",
            path.display(),
            len as f64 / 1e6
        );
        for (name, mut v) in t {
            v.sort_by(f64::total_cmp);
            let _ = writeln!(out, "  {name:<45} {:>7.2} {:>7.2}", v[v.len() / 2], v[0]);
        }
    }
}
