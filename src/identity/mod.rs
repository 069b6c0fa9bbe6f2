//! gcemu as identity provider: the key its tokens are signed with, the tokens themselves,
//! applications' client assertions, and the local CA behind `--tls`.

pub mod assertion;
pub mod keys;
pub mod tls;
pub mod tokens;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

/// What identity needs at run time, shared by every request.
#[derive(Debug, Clone)]
pub struct Identity {
    pub key: Arc<keys::SigningKey>,
    /// gcemu's CA when it serves https with a certificate the CA issued.
    pub ca: Option<Arc<tls::LocalCa>>,
}

/// Creates a file only its owner may read, with its directory, unless it already exists: the
/// contents are written to a temporary file of this process's own and then linked into place,
/// so a reader never sees half a file and of two processes creating it at once, one wins.
/// `Ok(false)` when the file already existed (the caller then reads it).
pub(crate) fn create_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<bool> {
    let dir = path.parent().context("a file path has a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let temporary = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&temporary)
            .with_context(|| format!("creating {}", temporary.display()))?;
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", temporary.display()))?;
    }
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(error).with_context(|| format!("creating {}", path.display())),
    }
}
