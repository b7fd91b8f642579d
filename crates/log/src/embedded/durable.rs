//! Durable file-system steps: making a directory entry stick, and replacing a small file
//! atomically (write a temporary file, fsync it, rename it over the old one, fsync the
//! directory), so a crash leaves either the old or the new content, never a mix.

use std::io::Write;
use std::path::Path;

use crate::{LogError, Result};

/// Makes a directory entry (a new file, a rename) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(LogError::io(dir))
}

/// Atomically replaces `path` with `bytes`.
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp_name);
    {
        let mut f = std::fs::File::create(&tmp).map_err(LogError::io(&tmp))?;
        f.write_all(bytes).map_err(LogError::io(&tmp))?;
        f.sync_all().map_err(LogError::io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(LogError::io(path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}
