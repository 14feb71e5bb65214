//! The application's own tests run against the drill's copy: the policy's
//! `command` with `DATABASE_URL` and `PG*` pointing at the scratch
//! database, within `command_timeout`. Its exit status and output (secrets
//! scrubbed) go into the evidence.

use super::checks::CheckResult;
use crate::config::ConnSettings;
use crate::error::{Error, Result};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// How long a command may run when the policy does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The output kept from each stream (the end of it, where failures show).
const KEEP_OUTPUT: usize = 64 << 10;

/// What the command printed (secrets scrubbed, the last 64 KiB of each
/// stream) and how it ended.
pub struct CommandRun {
    pub check: CheckResult,
    pub output: String,
}

/// Replaces the password and the connection URL the child got, then any
/// other URL credentials, in text the child printed.
pub fn scrub(text: &str, db: &ConnSettings) -> String {
    let mut t = text.to_string();
    for (k, v) in db.child_environment() {
        match k {
            "DATABASE_URL" => t = t.replace(&v, &crate::redact::redact(&v)),
            "PGPASSWORD" if !v.is_empty() => t = t.replace(&v, "***"),
            _ => {}
        }
    }
    crate::redact::redact(&t)
}

fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(KEEP_OUTPUT);
    let mut s = String::from_utf8_lossy(&bytes[start..]).into_owned();
    if start > 0 {
        s.insert_str(0, &format!("[... {start} bytes cut ...]\n"));
    }
    s
}

async fn read_all(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(mut p) = pipe {
        // A read error ends the capture; the exit status still tells.
        let _ = p.read_to_end(&mut out).await;
    }
    out
}

/// Kills the command's process group when dropped: on timeout, on an
/// interrupted drill, and any background process it left behind.
struct GroupKill(Option<u32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.0.and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) with a negative pid signals the process group
            // the child leads (it was started with process_group(0)); no
            // memory is touched.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

/// Runs `argv` against the copy `db`. A command that cannot start is an
/// error (the policy is wrong); one that fails or times out is a failed
/// check. Dropping the future (an interrupted drill) kills the child.
pub async fn run(argv: &[String], timeout: Duration, db: &ConnSettings) -> Result<CommandRun> {
    let t0 = Instant::now();
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Error::Config("drill command is empty".into()))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(db.child_environment())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Config(format!("drill command {program:?} cannot start: {e}")))?;
    let _group = GroupKill(child.id());
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let shown = argv.join(" ");
    let work = async {
        let (out, err, status) = tokio::join!(read_all(stdout), read_all(stderr), child.wait());
        (out, err, status)
    };
    let c = CheckResult::new(format!("command: {shown}"), "command", t0);
    let (check, output) = match tokio::time::timeout(timeout, work).await {
        Ok((out, err, status)) => {
            let status = status
                .map_err(|e| Error::Internal(format!("waiting for the drill command: {e}")))?;
            let mut output = tail(&out);
            if !err.is_empty() {
                output.push_str(&tail(&err));
            }
            let value = match status.code() {
                Some(code) => format!("exit {code}"),
                None => "killed by a signal".to_string(),
            };
            let check = if status.success() {
                CheckResult { value, ..c }
            } else {
                let last = output
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                c.fail(value.clone(), scrub(&format!("{value}: {last}"), db))
            };
            (check, output)
        }
        Err(_) => {
            // The child and everything it started are killed with `_group`.
            (
                c.fail(
                    "timed out".into(),
                    format!(
                        "still running after {}s (command_timeout)",
                        timeout.as_secs()
                    ),
                ),
                String::new(),
            )
        }
    };
    let mut check = check;
    check.duration_ms = t0.elapsed().as_millis() as u64;
    check.expected = Some("exit 0".into());
    Ok(CommandRun {
        check,
        output: scrub(&output, db),
    })
}
