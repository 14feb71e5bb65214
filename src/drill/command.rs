//! The application's own tests run against the drill's copy: the policy's
//! `command` with `DATABASE_URL` and `PG*` pointing at the scratch
//! database, within `command_timeout`. Its exit status and output (secrets
//! scrubbed, the end of each stream) go into the evidence. The command
//! never sees pgkeep's key variables, other `PG*` settings, or the
//! variables the source connection is read from.

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
/// pgkeep's own secrets, never passed to the command.
const PGKEEP_SECRETS: [&str; 4] = [
    "PGKEEP_PASSPHRASE",
    "PGKEEP_KEY",
    "PGKEEP_NEW_PASSPHRASE",
    "PGKEEP_NEW_KEY",
];

/// What the command printed (secrets scrubbed, the last 64 KiB of each
/// stream) and how it ended.
pub struct CommandRun {
    pub check: CheckResult,
    pub output: String,
}

/// Replaces the password and the connection URL the child got (the URL
/// by its redacted form), then any other URL credentials, in text the
/// child printed.
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

/// Reads a pipe to its end, keeping the last [`KEEP_OUTPUT`] bytes (and
/// how many were cut before them).
async fn read_tail(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut cut = 0usize;
    if let Some(mut p) = pipe {
        let mut buf = vec![0u8; 16 << 10];
        // A read error ends the capture; the exit status still tells.
        while let Ok(n) = p.read(&mut buf).await {
            if n == 0 {
                break;
            }
            kept.extend_from_slice(&buf[..n]);
            if kept.len() > 2 * KEEP_OUTPUT {
                let drop = kept.len() - KEEP_OUTPUT;
                kept.drain(..drop);
                cut += drop;
            }
        }
    }
    if kept.len() > KEEP_OUTPUT {
        let drop = kept.len() - KEEP_OUTPUT;
        kept.drain(..drop);
        cut += drop;
    }
    let mut s = String::from_utf8_lossy(&kept).into_owned();
    if cut > 0 {
        s.insert_str(0, &format!("[... {cut} bytes cut ...]\n"));
    }
    s
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

/// Runs `argv` against the copy `db`, without the variables `hidden`. A
/// command that cannot start is an error (the policy is wrong); one that
/// fails or times out is a failed check, with what it printed. Dropping
/// the future (an interrupted drill) kills the command and its children.
pub async fn run(
    argv: &[String],
    timeout: Duration,
    db: &ConnSettings,
    hidden: &[String],
) -> Result<CommandRun> {
    let t0 = Instant::now();
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Error::Config("drill command is empty".into()))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args);
    for (k, _) in std::env::vars_os() {
        let name = k.to_string_lossy();
        if name.starts_with("PG")
            || PGKEEP_SECRETS.contains(&name.as_ref())
            || hidden.iter().any(|h| *h == name)
        {
            cmd.env_remove(&k);
        }
    }
    cmd.envs(db.child_environment())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Config(format!("drill command {program:?} cannot start: {e}")))?;
    let group = GroupKill(child.id());
    let stdout = tokio::spawn(read_tail(child.stdout.take()));
    let stderr = tokio::spawn(read_tail(child.stderr.take()));
    let c = CheckResult::new(format!("command: {}", argv.join(" ")), "command", t0);
    let waited = tokio::time::timeout(timeout, child.wait()).await;
    // The group goes now: after a timeout, and any background process the
    // command left holding its output pipes.
    drop(group);
    let mut output = stdout.await.unwrap_or_default();
    output.push_str(&stderr.await.unwrap_or_default());
    let output = scrub(&output, db);
    let mut check = match waited {
        Ok(status) => {
            let status = status
                .map_err(|e| Error::Internal(format!("waiting for the drill command: {e}")))?;
            let value = match status.code() {
                Some(code) => format!("exit {code}"),
                None => "killed by a signal".to_string(),
            };
            if status.success() {
                CheckResult { value, ..c }
            } else {
                let last = output
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                c.fail(value.clone(), format!("{value}: {last}"))
            }
        }
        Err(_) => c.fail(
            "timed out".into(),
            format!(
                "still running after {} (command_timeout); killed",
                crate::units::format_duration(timeout)
            ),
        ),
    };
    check.duration_ms = t0.elapsed().as_millis() as u64;
    check.expected = Some("exit 0".into());
    Ok(CommandRun { check, output })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> ConnSettings {
        ConnSettings::resolve_with(
            "host=db.internal port=5433 user=drill dbname=pgkeep_drill_x password=s3cr3t-pw",
            &|_| None,
        )
        .unwrap()
    }

    fn argv(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn the_command_sees_the_copy_not_hidden_variables_and_its_output_is_scrubbed() {
        let run = run(
            &argv("echo \"db=$PGDATABASE url=$DATABASE_URL pw=$PGPASSWORD home=$HOME\""),
            Duration::from_secs(60),
            &db(),
            &["HOME".to_string()],
        )
        .await
        .unwrap();
        assert!(run.check.passed(), "{:?}", run.check);
        assert_eq!(run.check.value, "exit 0");
        assert!(run.output.contains("db=pgkeep_drill_x"), "{}", run.output);
        assert!(
            run.output.trim_end().ends_with("home="),
            "a hidden variable is unset: {}",
            run.output
        );
        assert!(!run.output.contains("s3cr3t-pw"), "{}", run.output);
        assert!(
            run.output
                .contains("url=postgresql://drill:***@db.internal:5433/"),
            "{}",
            run.output
        );
    }

    #[tokio::test]
    async fn a_failing_or_slow_command_fails_its_check_and_keeps_its_output() {
        let failed = run(
            &argv("echo first; echo last words >&2; exit 4"),
            Duration::from_secs(60),
            &db(),
            &[],
        )
        .await
        .unwrap();
        assert!(!failed.check.passed());
        assert_eq!(failed.check.details, ["exit 4: last words"]);
        let t0 = Instant::now();
        let slow = run(
            &argv("echo started; sleep 30 & wait"),
            Duration::from_millis(300),
            &db(),
            &[],
        )
        .await
        .unwrap();
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the process group is killed at the timeout"
        );
        assert_eq!(slow.check.value, "timed out");
        assert!(
            slow.output.contains("started"),
            "output kept on timeout: {}",
            slow.output
        );
        let missing = run(
            &["/nonexistent/tool".to_string()],
            Duration::from_secs(5),
            &db(),
            &[],
        )
        .await;
        assert!(matches!(missing, Err(Error::Config(_))));
    }

    #[tokio::test]
    async fn long_output_keeps_its_end() {
        let run = run(
            &argv("yes line | head -c 300000; echo THE-END"),
            Duration::from_secs(60),
            &db(),
            &[],
        )
        .await
        .unwrap();
        assert!(run.output.starts_with("[... "), "{}", &run.output[..40]);
        assert!(run.output.trim_end().ends_with("THE-END"));
        assert!(run.output.len() < KEEP_OUTPUT + 100);
    }
}
