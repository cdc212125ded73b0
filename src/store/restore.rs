//! Backups of PostgreSQL (through `pg_dump`) and restoring a backup of either database:
//! SQLite's backup file put in place of the database, PostgreSQL's through `pg_restore`.
//!
//! Owns the safety of both: a backup never overwrites a file, a restore never replaces an
//! existing SQLite database unless forced and never leaves an old write-ahead log to be
//! replayed onto the restored file, and the password of a database URL never appears on a
//! command line (it goes to the tool in `PGPASSWORD`) or in an error. Must not run while the
//! bot writes to the database it restores (the README says to stop it first).

use std::path::Path;
use std::process::Command;
use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;

use super::StoreError;

/// A PostgreSQL URL without its password, and the password.
fn split_password(url: &str) -> Result<(String, Option<String>), StoreError> {
    let mut parsed = url::Url::parse(url)
        .map_err(|e| StoreError::Unsupported(format!("database URL is not a URL: {e}")))?;
    let password = parsed.password().map(|p| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned()
    });
    let _ = parsed.set_password(None);
    Ok((parsed.to_string(), password))
}

/// Runs a PostgreSQL client tool, off the async threads; its error output becomes the error.
async fn run_tool(mut cmd: Command, tool: &'static str) -> Result<(), StoreError> {
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .map_err(|e| StoreError::Unsupported(format!("{tool} did not finish: {e}")))?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::Unsupported(format!(
                "{tool} is not installed; install PostgreSQL's client tools \
                 (Debian and Ubuntu: postgresql-client) of the server's major version"
            )),
            _ => StoreError::Unsupported(format!("{tool} could not start: {e}")),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(StoreError::Unsupported(format!(
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Writes PostgreSQL's database at `url` (only `schema` when given) to `path` in `pg_dump`'s
/// custom format, which `pg_restore` reads.
pub(crate) async fn pg_backup(
    url: &str,
    schema: Option<&str>,
    path: &Path,
) -> Result<(), StoreError> {
    refuse_existing(path)?;
    let (url, password) = split_password(url)?;
    let mut cmd = Command::new("pg_dump");
    cmd.arg("--format=custom").arg("--file").arg(path);
    if let Some(s) = schema {
        cmd.arg("--schema").arg(s);
    }
    cmd.arg("--dbname").arg(url);
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    run_tool(cmd, "pg_dump").await
}

/// A backup is a new file: an existing one is never overwritten.
pub(crate) fn refuse_existing(path: &Path) -> Result<(), StoreError> {
    if path.exists() {
        return Err(StoreError::Unsupported(format!(
            "{} already exists; choose a new file so no backup is overwritten",
            path.display()
        )));
    }
    Ok(())
}

/// Replaces the database at `url` with the backup in `file`. SQLite: the backup file is
/// checked and copied in place (an existing database only with `force`); PostgreSQL:
/// `pg_restore --clean --if-exists` into the database, in one transaction.
pub async fn restore(url: &str, file: &Path, force: bool) -> Result<(), StoreError> {
    if !file.is_file() {
        return Err(StoreError::Unsupported(format!(
            "{} is not a backup file",
            file.display()
        )));
    }
    if url.starts_with("sqlite:") {
        let target = SqliteConnectOptions::from_str(url)?
            .get_filename()
            .to_path_buf();
        let mut head = [0u8; 16];
        let read = std::fs::File::open(file)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head));
        if read.is_err() || &head != b"SQLite format 3\0" {
            return Err(StoreError::Unsupported(format!(
                "{} is not a SQLite database (a `switchboard backup` of SQLite is)",
                file.display()
            )));
        }
        if target.exists() && !force {
            return Err(StoreError::Unsupported(format!(
                "{} exists; stop the bot and pass --force to replace it with the backup",
                target.display()
            )));
        }
        let io = |e: std::io::Error| StoreError::Unsupported(format!("restore failed: {e}"));
        // Copied beside the target and renamed over it, so a failure half-way leaves the old
        // database; its old write-ahead log must not be replayed onto the restored file.
        let partial = target.with_extension("restoring");
        std::fs::copy(file, &partial).map_err(io)?;
        for ext in ["-wal", "-shm"] {
            let mut side = target.clone().into_os_string();
            side.push(ext);
            match std::fs::remove_file(&side) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
        }
        std::fs::rename(&partial, &target).map_err(io)?;
        Ok(())
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (url, password) = split_password(url)?;
        let mut cmd = Command::new("pg_restore");
        cmd.args([
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
        ])
        .arg("--dbname")
        .arg(url)
        .arg(file);
        if let Some(p) = password {
            cmd.env("PGPASSWORD", p);
        }
        run_tool(cmd, "pg_restore").await
    } else {
        Err(StoreError::Unsupported(
            "database URL must start with sqlite:// or postgres://".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_for_the_environment() {
        let (url, pw) =
            split_password("postgres://bot:s%40cret@db.example:5432/desk?sslmode=require").unwrap();
        assert_eq!(url, "postgres://bot@db.example:5432/desk?sslmode=require");
        assert_eq!(pw.as_deref(), Some("s@cret"));
        let (url, pw) = split_password("postgres://postgres@127.0.0.1/test").unwrap();
        assert_eq!(url, "postgres://postgres@127.0.0.1/test");
        assert_eq!(pw, None);
    }
}
