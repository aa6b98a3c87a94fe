//! The `leanmote-api` process: admin subcommands, and the server started and stopped per case.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The `leanmote-api` binary and the database it works on.
#[derive(Debug, Clone)]
pub struct Binary {
    pub path: PathBuf,
    pub database_url: String,
}

impl Binary {
    /// Runs an admin subcommand and returns its standard output.
    pub fn admin(&self, arguments: &[&str]) -> anyhow::Result<String> {
        let output = Command::new(&self.path)
            .args(arguments)
            .env("DATABASE_URL", &self.database_url)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("failed to run {}", self.path.display()))?;
        if !output.status.success() {
            bail!(
                "leanmote-api {} failed ({}): {}",
                arguments.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8(output.stdout)?)
    }

    /// `create-organization`; returns the new organization's id.
    pub fn create_organization(&self, name: &str) -> anyhow::Result<i64> {
        let output = self.admin(&["create-organization", "--name", name])?;
        // "created organization 1 (name)"
        id_after(&output, "created organization ")
    }

    /// `create-project`; returns the project's id.
    pub fn create_project(&self, organization_id: i64, app_id: &str, name: &str) -> anyhow::Result<i64> {
        let organization = organization_id.to_string();
        let output =
            self.admin(&["create-project", "--organization-id", &organization, "--app-id", app_id, "--name", name])?;
        // "created project 2 (APP) in organization 1"
        id_after(&output, "created project ")
    }

    /// `create-token`; returns the token, which the command prints on its second line.
    pub fn create_token(&self, label: &str, organization_id: i64) -> anyhow::Result<String> {
        let organization = organization_id.to_string();
        let output = self.admin(&["create-token", "--label", label, "--organization-id", &organization])?;
        let token = output.lines().nth(1).map(str::trim).unwrap_or_default();
        if !token.starts_with("lm-") {
            bail!("create-token printed no token on its second line: {output:?}");
        }
        Ok(token.to_owned())
    }

    /// Starts `serve` on a free port of 127.0.0.1 and waits for its listening line.
    pub fn serve(&self, workers: u16, log: &Path) -> anyhow::Result<Server> {
        let log_file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("failed to open {}", log.display()))?;
        let mut child = Command::new(&self.path)
            .args(["serve", "--bind", "127.0.0.1:0", "--workers", &workers.to_string()])
            .env("DATABASE_URL", &self.database_url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("failed to start {}", self.path.display()))?;
        let stdout = child.stdout.take().context("the server's stdout is not piped")?;
        // From here on the guard stops the process on every error path.
        let mut server = Server { child, base_url: String::new() };
        let mut lines = BufReader::new(stdout).lines();
        server.base_url = loop {
            let Some(line) = lines.next() else {
                bail!("the server exited before listening; see {}", log.display());
            };
            if let Some(url) = line?.strip_prefix("listening on ") {
                break url.trim().to_owned();
            }
        };
        // Drain whatever else it prints, so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(server)
    }
}

fn id_after(output: &str, prefix: &str) -> anyhow::Result<i64> {
    output
        .lines()
        .find_map(|line| line.strip_prefix(prefix).or_else(|| line.strip_prefix(&prefix.replace("created", "updated"))))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|id| id.parse().ok())
        .with_context(|| format!("no id after {prefix:?} in {output:?}"))
}

/// A running `leanmote-api serve`, stopped when dropped.
pub struct Server {
    child: Child,
    pub base_url: String,
}

/// Memory figures of a process, from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Memory {
    /// Peak resident set size (`VmHWM`).
    pub peak_rss_kib: u64,
    /// Resident set size when read (`VmRSS`).
    pub rss_kib: u64,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads the process's peak and current resident set size.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).with_context(|| format!("failed to read {path}"))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
                .with_context(|| format!("{path} has no {name}"))
        };
        Ok(Memory { peak_rss_kib: field("VmHWM:")?, rss_kib: field("VmRSS:")? })
    }

    /// Sends SIGTERM and waits up to 10 seconds for a graceful exit, then kills.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.terminate()
    }

    fn terminate(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        // `kill` by pid: the standard library only sends SIGKILL, and unsafe code is forbidden here.
        let _ = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.terminate().is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
