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

/// Writes a file only its owner may read, creating its directory; atomically (write, then rename).
pub(crate) fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("a file path has a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let temporary = path.with_extension("tmp");
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
    std::fs::rename(&temporary, path).with_context(|| format!("creating {}", path.display()))
}
