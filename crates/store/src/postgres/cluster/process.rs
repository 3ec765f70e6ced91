//! Running PostgreSQL's programs: as the `postgres` user when we are root (`initdb` refuses
//! root), and each server under a small `sh` guard that stops it when our end of its stdin
//! closes, which happens on a clean stop and also when this process dies, however it dies. So
//! a killed test run or `afterword up` leaves no server behind.

use std::fs;
use std::io::{BufRead, BufReader, Read as _};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use super::ClusterError;

/// The guard: starts the program with its output appended to a log, prints its pid, and
/// waits for stdin to close; then sends the stop signal and waits for the program to end. (A
/// program that ignores the signal is killed by `Guarded::wait`.)
const GUARD_SCRIPT: &str = r#"log="$1"; shift
"$@" >>"$log" 2>&1 </dev/null &
child=$!
echo "$child"
read -r _ignored || true
kill -"$STOP_SIGNAL" "$child" 2>/dev/null
wait "$child"
"#;

/// Who PostgreSQL's programs run as.
#[derive(Debug, Clone, Copy)]
pub struct RunAs {
    /// `Some((uid, gid))` of `postgres` when we are root; `None` runs them as ourselves.
    ids: Option<(u32, u32)>,
}

impl RunAs {
    /// Programs that are not PostgreSQL's (app servers): always as ourselves.
    pub fn current_user() -> Self {
        RunAs { ids: None }
    }

    /// Root runs them as `postgres`; anyone else as themselves.
    pub fn detect() -> Result<Self, ClusterError> {
        let euid = fs::metadata("/proc/self").map_err(|e| ClusterError::io("read /proc/self", e))?.uid();
        if euid != 0 {
            return Ok(RunAs { ids: None });
        }
        let passwd = fs::read_to_string("/etc/passwd").map_err(|e| ClusterError::io("read /etc/passwd", e))?;
        let ids = passwd
            .lines()
            .map(|line| line.split(':').collect::<Vec<_>>())
            .find(|fields| fields.first() == Some(&"postgres") && fields.len() > 3)
            .and_then(|fields| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .ok_or(ClusterError::NoPostgresUser)?;
        Ok(RunAs { ids: Some(ids) })
    }

    /// A command for one of PostgreSQL's programs, with PostgreSQL's environment variables
    /// removed so a developer's `PGHOST` or `PGPORT` cannot redirect it.
    pub fn command(&self, program: &Path, cwd: &Path) -> Command {
        let mut command = Command::new(program);
        command.current_dir(cwd);
        for name in ["PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGDATA", "PGOPTIONS"] {
            command.env_remove(name);
        }
        if let Some((uid, gid)) = self.ids {
            command.uid(uid).gid(gid);
        }
        command
    }

    /// Makes `path` ours-to-share: owned by the server's user when we are root.
    pub fn hand_over(&self, path: &Path) -> Result<(), ClusterError> {
        if let Some((uid, gid)) = self.ids {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| ClusterError::io(format!("chown {}", path.display()), e))?;
        }
        Ok(())
    }

    /// Whether the server's user can create files in `dir` (every ancestor traversable).
    pub fn can_write(&self, dir: &Path) -> bool {
        let mut probe = self.command(Path::new("/bin/sh"), Path::new("/"));
        probe.args(["-c", "test -d \"$0\" && test -w \"$0\" && test -x \"$0\""]).arg(dir);
        probe.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        probe.status().is_ok_and(|status| status.success())
    }
}

/// Runs a program to completion; its output is returned in the error when it fails.
pub fn run(mut command: Command, what: &str) -> Result<(), ClusterError> {
    let output = command.stdin(Stdio::null()).output().map_err(|e| ClusterError::io(format!("run {what}"), e))?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    Err(ClusterError::Failed { what: what.to_owned(), output: tail(&text, 2_000) })
}

/// A server started under the guard.
pub struct Guarded {
    guard: Child,
    stdin: Option<ChildStdin>,
    /// The server's own pid (the guard's child).
    pub pid: u32,
}

impl Guarded {
    /// Starts `program args..` under the guard (as `run_as`, with `envs` added), writing its
    /// output to `log` (emptied first); `stop_signal` is a `kill` signal name, e.g. `INT`
    /// (PostgreSQL's fast shutdown) or `TERM`.
    pub fn start(
        run_as: &RunAs,
        program: &Path,
        args: &[String],
        envs: &[(String, String)],
        cwd: &Path,
        log: &Path,
        stop_signal: &str,
    ) -> Result<Self, ClusterError> {
        fs::File::create(log).map_err(|e| ClusterError::io(format!("create {}", log.display()), e))?;
        run_as.hand_over(log)?;
        let mut command = run_as.command(Path::new("/bin/sh"), cwd);
        command.arg("-c").arg(GUARD_SCRIPT).arg("afterword-guard").arg(log).arg(program).args(args);
        command.env("STOP_SIGNAL", stop_signal).envs(envs.iter().map(|(k, v)| (k, v)));
        // Its own process group: a Ctrl-C in the terminal reaches only us, and we stop the
        // servers in order.
        command.process_group(0).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut guard = command.spawn().map_err(|e| ClusterError::io(format!("start {}", program.display()), e))?;
        let stdin = guard.stdin.take();
        let mut line = String::new();
        if let Some(stdout) = guard.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        let Ok(pid) = line.trim().parse::<u32>() else {
            let _ = guard.kill();
            let _ = guard.wait();
            return Err(ClusterError::Failed { what: format!("start {}", program.display()), output: line });
        };
        Ok(Guarded { guard, stdin, pid })
    }

    /// Whether the server process still runs (not exited, not a zombie).
    pub fn alive(&self) -> bool {
        pid_alive(self.pid)
    }

    /// Asks the guard to stop the server, without waiting.
    pub fn signal_stop(&mut self) {
        self.stdin = None;
    }

    /// Waits up to `wait_max` for the guard (and so the server) to end; then kills the server
    /// with SIGKILL and waits for the guard once more.
    pub fn wait(&mut self, wait_max: Duration) {
        self.signal_stop();
        if self.wait_guard(wait_max) {
            return;
        }
        tracing::warn!(pid = self.pid, "a server ignored its stop signal; killing it");
        let _ = Command::new("/bin/sh")
            .args(["-c", "kill -KILL \"$0\" 2>/dev/null"])
            .arg(self.pid.to_string())
            .stdin(Stdio::null())
            .status();
        if !self.wait_guard(Duration::from_secs(5)) {
            let _ = self.guard.kill();
            let _ = self.guard.wait();
        }
    }

    fn wait_guard(&mut self, wait_max: Duration) -> bool {
        let started = Instant::now();
        loop {
            match self.guard.try_wait() {
                Ok(Some(_)) | Err(_) => return true,
                Ok(None) if started.elapsed() >= wait_max => return false,
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.wait(Duration::from_secs(20));
    }
}

/// Whether `pid` is a running process (a zombie counts as ended).
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name.
        Ok(stat) => stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()) != Some('Z'),
        Err(_) => false,
    }
}

/// The last `bytes_max` bytes of `text`, on a character boundary.
pub fn tail(text: &str, bytes_max: usize) -> String {
    let mut start = text.len().saturating_sub(bytes_max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

/// The end of a log file, for error messages.
pub fn log_tail(log: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(log) {
        let _ = file.read_to_string(&mut text);
    }
    tail(&text, 2_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("ab", 10), "ab");
        assert_eq!(tail("aé", 1), "");
    }

    #[test]
    fn our_own_pid_is_alive() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(u32::MAX));
    }
}
